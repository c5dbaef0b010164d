"""Evaluation: image metrics (metrics), per-frame scores of any reconstructor (frames), patch-model
measurements incl. the seam metric (patches), CLIP metrics that can fail (clip_metrics), text search (search)."""
