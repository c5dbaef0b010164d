"""Studies built on the library: the ablation sweep, the full-frame vs patch comparison, the tubelet study."""
