"""Video classification with a ViT: 2D per-frame patches vs 3D tubelets (seed 004, ViViT / VideoMAE).

Modules, one concept each: ``config`` (ViTConfig, presets, APPCONFIG__ overrides, token grid),
``model`` (LSViTForAction and its checkpoints), ``inflate`` (2D -> 3D weights), ``clips`` (clip sets
on disk, the arrow-of-time task), ``train`` (fit / predict), ``measure`` (tokens, FLOPs, speed,
memory, intervals), ``study`` (every variant x seed, summary, verdict), ``cli`` (train / infer).
"""
