"""Data layer: decoded and cached videos (video), the train/unseen split (split), patch windows (geometry),
the CLIP teacher (teacher) and its cached per-patch targets (targets)."""
