"""The synthetic portrait world: a renderer whose every attribute is known, the models
trained on it (``spf-bench synth train``), their shipped weights (``--weights synth``), the
exact per-image measurements they allow and the training sets it renders. The experiments
built on it live in :mod:`spf_bench.lab`. See docs/synth.md."""
