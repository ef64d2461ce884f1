"""The TokenCompose baseline: its config, grounding data, attention recorder, losses and training."""
