"""The synthetic portrait world: a renderer whose every attribute is known, the models
trained on it (``spf-bench synth train``), their shipped weights (``--weights synth``), the
exact metrics they allow and the pollution lab (``spf-bench synth lab``). See docs/synth.md."""
