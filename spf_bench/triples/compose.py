"""The composed test set a weight source's text encoder understands."""

from __future__ import annotations

from spf_bench.generation.protocol import WORLD_CAPTIONS, source_record
from spf_bench.triples.captions import Triple, compose_triples
from spf_bench.triples.world import compose_synth_triples


def compose_for(weights: str, n: int, seed: int = 0) -> list[Triple]:
    """The synthetic world's own captions where the source's encoder has seen nothing else
    (its record's caption language), the portrait vocabulary on every other source."""
    if source_record(weights).captions == WORLD_CAPTIONS:
        return compose_synth_triples(n, seed)
    return compose_triples(n, seed)
