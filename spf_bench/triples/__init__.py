"""Test triples: the caption composer (portrait vocabulary and the synthetic world's language), user triple files, and the triple set on disk (manifest, originals, resumable build)."""
