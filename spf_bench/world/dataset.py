"""Sets of rendered portraits with their attributes, identities and seeds.

Rendering costs a few milliseconds a portrait, so training draws from a set rendered once
(and kept on disk, so a resumed training does not render it again) rather than rendering
every batch afresh; evaluation renders fresh portraits from seeds the training set never used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spf_bench.core.atomic import atomic_path
from spf_bench.world.attributes import ATTRIBUTES, NAMES, index_of, sample_attributes
from spf_bench.world.render import render

N_IDENTITIES = 1000  # identities 0..N-1 appear in training sets; evaluation may use others


@dataclass
class PortraitSet:
    images: np.ndarray  # uint8 [N, S, S, 3]
    labels: np.ndarray  # int64 [N, n_attributes], value indices in ATTRIBUTES order
    identities: np.ndarray  # int64 [N]
    seeds: np.ndarray  # int64 [N]

    def __len__(self) -> int:
        return len(self.images)

    def attributes(self, i: int) -> dict[str, str]:
        return {a.name: a.values[int(v)] for a, v in zip(ATTRIBUTES, self.labels[i])}


def encode_labels(attributes: dict[str, str]) -> list[int]:
    return [index_of(name, attributes[name]) for name in NAMES]


def render_set(n: int, seed: int, size: int = 64, identities: tuple[int, int] = (0, N_IDENTITIES), novel: bool = False) -> PortraitSet:
    """``n`` portraits with attributes, identity and grain all drawn from ``seed``; ``novel``:
    with the novel attributes drawn too (a known set's novel columns are all "no")."""
    rng = np.random.default_rng([0xDA7A + (1 if novel else 0), seed])
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = np.empty((n, len(NAMES)), dtype=np.int64)
    ids = rng.integers(identities[0], identities[1], size=n)
    seeds = rng.integers(0, 2**31, size=n)
    for i in range(n):
        attrs = sample_attributes(rng, novel=novel)
        labels[i] = encode_labels(attrs)
        images[i] = render(attrs, int(ids[i]), int(seeds[i]), size)
    return PortraitSet(images, labels, ids.astype(np.int64), seeds.astype(np.int64))


def cached_set(path: Path, n: int, seed: int, size: int = 64, novel: bool = False) -> PortraitSet:
    """``render_set`` kept in ``path`` (an .npz), rendered only when absent."""
    path = Path(path)
    if path.is_file():
        data = np.load(path)
        if len(data["images"]) == n and data["labels"].shape[1] == len(NAMES):
            return PortraitSet(data["images"], data["labels"], data["identities"], data["seeds"])
    data = render_set(n, seed, size, novel=novel)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, images=data.images, labels=data.labels, identities=data.identities, seeds=data.seeds)
    return data
