"""Scoring a run: backbone passes through the feature cache, every metric's update and aggregate, and the per-pair and summary files."""
