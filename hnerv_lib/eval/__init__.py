"""Evaluation: image metrics (metrics), per-frame scores of any reconstructor (frames), patch-model
measurements incl. the seam metric (patches), CLIP verification statistics (clip_probes), text search (search)."""
