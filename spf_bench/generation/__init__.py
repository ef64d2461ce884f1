"""Drawing portraits: the base model, the per-source protocol settings, and batched, cached, resumable sampling."""
