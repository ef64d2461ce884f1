"""The composed test set a weight source's text encoder understands."""

from __future__ import annotations

from spf_bench.triples.captions import Triple, compose_triples
from spf_bench.triples.world import compose_synth_triples


def compose_for(weights: str, n: int, seed: int = 0) -> list[Triple]:
    """The synthetic world's own captions on ``synth`` (its encoder has seen nothing else),
    the portrait vocabulary on every other source."""
    if weights == "synth":
        return compose_synth_triples(n, seed)
    return compose_triples(n, seed)
