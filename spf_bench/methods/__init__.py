"""Methods: the registry of how each method builds its pipeline from checkpoints, the quick checkpoints trained for a run, and the methods with their own sampling (Magnet)."""
