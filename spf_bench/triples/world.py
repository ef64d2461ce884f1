"""Test triples and quick-training sets in the synthetic world's own words.

The world's text encoder knows only the captions ``captions.py`` writes, so on
``--weights synth`` a triple's base caption is ``compose_caption`` of sampled attributes with
the target attribute left unsaid, and its target caption is one ``attribute_phrase``. Targets
cover the five categories of the paper's Tab. 3 (the world's background is not one of them),
categories take turns, and within a category targets are dealt from a seeded shuffle, so a
set is balanced, deterministic for its seed and prefix-stable, as ``spf_bench.triples.captions``'
composed sets are. Presence attributes are targeted only as present: an unsaid presence
attribute is absent, so "wearing glasses" asks for a change and "without glasses" would not.

The quick checkpoints of ``spf-bench run --weights synth`` train on a customization set
(:mod:`.custom_sets`) that teaches the same targets in the same words from a narrow,
polluting distribution; ``write_training_set`` renders an unbiased one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spf_bench.triples.vocab import CATEGORIES
from spf_bench.triples.captions import SEED_RANGE, Triple, triple_id
from spf_bench.core.errors import SpfError
from spf_bench.world.attributes import ATTRIBUTES, BY_NAME, sample_attributes
from spf_bench.world.captions import attribute_phrase, compose_caption
from spf_bench.world.sets import Correlation, render_rows, write_metadata

# The world's attribute categories -> the category names the suite's tables use.
SUITE_CATEGORY = {
    "facial attributes": "facial_attributes", "clothing": "clothing", "image style": "image_style",
    "appearance": "appearance", "accessories": "accessories",
}
# Hair is said only as one joint phrase ("with long red hair"), which attribute_phrase does
# not write, so length and colour are never a lone target; skin stands for appearance.
UNSTATED = ("hair_colour", "hair_length")


@dataclass(frozen=True)
class Target:
    name: str
    value: str

    @property
    def category(self) -> str:
        return SUITE_CATEGORY[BY_NAME[self.name].category]

    @property
    def caption(self) -> str:
        # Always the first wording: the training set (lab_sets.write_set) says it so, and a
        # test target should be the words the checkpoint was taught.
        return attribute_phrase(self.name, self.value)


def targets(novel: bool = True) -> dict[str, tuple[Target, ...]]:
    """Every target per suite category, in attribute order: the novel attributes, or the known ones."""
    out: dict[str, list[Target]] = {c: [] for c in CATEGORIES}
    for attr in ATTRIBUTES:
        if attr.category not in SUITE_CATEGORY or attr.name in UNSTATED or attr.novel != novel:
            continue
        values = ("yes",) if attr.presence else attr.values
        out[SUITE_CATEGORY[attr.category]].extend(Target(attr.name, v) for v in values)
    empty = [c for c, group in out.items() if not group]
    if empty:  # a changed attribute table must not silently drop a category from every set
        raise SpfError(f"The synthetic world has no target for the categor(y/ies) {', '.join(empty)}.")
    return {c: tuple(group) for c, group in out.items()}


def deal(n: int, seed: int, novel: bool = True) -> list[Target]:
    """``n`` targets: categories in turn, each category's targets from a seeded shuffle."""
    if n < 0:
        raise SpfError(f"The number of triples must be zero or more, not {n}.")
    decks = {}
    for category, group in targets(novel).items():
        deck = list(group)
        random.Random(f"spf-synth-deck:{seed}:{category}").shuffle(deck)
        decks[category] = deck
    dealt = []
    for index in range(n):
        deck = decks[CATEGORIES[index % len(CATEGORIES)]]
        dealt.append(deck[(index // len(CATEGORIES)) % len(deck)])
    return dealt


def _generator(tag: str, seed: int, index: int) -> np.random.Generator:
    # One generator per triple keeps a set prefix-stable; a string seed hashes the same in
    # every process and accepts any integer set seed (numpy's seeds must be non-negative).
    return np.random.default_rng(random.Random(f"{tag}:{seed}:{index}").getrandbits(64))


def compose_synth_triples(n: int, seed: int = 0, novel: bool = True) -> list[Triple]:
    """``n`` triples the world's pipeline understands (see the module docstring)."""
    triples = []
    for index, target in enumerate(deal(n, seed, novel)):
        rng = _generator("spf-synth-triple", seed, index)
        base = compose_caption(sample_attributes(rng), rng, omit=(target.name,))
        triples.append(Triple(triple_id(index), target.category, base, target.caption, int(rng.integers(SEED_RANGE))))
    return triples


# ----------------------------------------------------------------------------- training set

def write_training_set(folder: Path, n: int, seed: int, size: int) -> Path:
    """Render ``n`` training portraits, dealt over the targets as test triples are, into
    ``folder`` with one ``metadata.jsonl`` spf-train reads (paths into one subfolder per target).

    Each target's portraits are rendered by the pollution lab's ``render_rows`` without a
    correlation: every portrait shows the target, the base caption leaves it unsaid.
    """
    if n < 1:
        raise SpfError(f"A training set needs at least one image, not {n}.")
    if seed < 0:
        raise SpfError(f"The training set's seed must be zero or more, not {seed}.")
    folder = Path(folder)
    counts: dict[Target, int] = {}
    for target in deal(n, seed):
        counts[target] = counts.get(target, 0) + 1
    rows = []
    for number, (target, count) in enumerate(sorted(counts.items(), key=lambda kv: (kv[0].name, kv[0].value))):
        sub = f"{target.name}-{target.value}".replace(" ", "-")
        # render_rows leaves its 'spurious' attribute unsaid and, uncorrelated, random: naming
        # the target itself there adds nothing to what the base caption omits.
        corr = Correlation(target.name, target.value, target.name, target.value)
        for row in render_rows(folder, sub, corr, count, seed=seed * 1000 + number, size=size, correlated=False):
            rows.append({**row, "category": target.category})
    write_metadata(folder, rows)
    return folder
