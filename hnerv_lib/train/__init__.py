"""Training: the run config and presets (config), model families = what a step computes (families), losses,
lr schedule, the trainer, self-describing checkpoints, sweeps and the CLI."""
