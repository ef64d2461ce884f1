"""Twin portraits: the same portrait drawn twice, differing in one small attribute.

A contrastive CLIP learns what tells the images of a batch apart. In a batch of random
portraits the background, the shirt or the hair already tell every pair apart, so nothing
makes it look at a freckle, an earring or a tie; it then reads those phrases at chance, and
CLIP-T and the response loss that rely on it cannot see the target. A twin (same identity,
attributes and grain, one two-valued attribute flipped) differs from its portrait only
inside that attribute's mask, so a batch holding both can only be solved by seeing it.

The same twins measure how well a CLIP sees each attribute: the share of pairs in which the
attribute's phrase is closer to the image that shows it (``paired_wins``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spf_bench.core.atomic import atomic_path
from spf_bench.world.attributes import ATTRIBUTES, BY_NAME, NAMES, sample_attributes
from spf_bench.world.dataset import N_IDENTITIES, PortraitSet, encode_labels
from spf_bench.world.render import render

# The two-valued attributes that change a small region: every presence attribute (the
# accessories, the beard and the five novel ones) and the smile. Hair length, also
# two-valued, changes a large region that random batches already separate.
TWIN_ATTRIBUTES = tuple(a.name for a in ATTRIBUTES if a.presence) + ("smiling",)


def _flip(name: str, value: str) -> str:
    values = BY_NAME[name].values
    return values[1 - values.index(value)]


def twin_set(data: PortraitSet, seed: int, size: int) -> tuple[PortraitSet, np.ndarray]:
    """For each portrait of ``data``, its twin with one attribute of ``TWIN_ATTRIBUTES``
    (drawn uniformly from ``seed``) flipped; returns the twins and the flipped names' indices."""
    rng = np.random.default_rng([0x7717, seed])
    flipped = rng.integers(0, len(TWIN_ATTRIBUTES), size=len(data))
    images = np.empty((len(data), size, size, 3), dtype=np.uint8)
    labels = np.empty_like(data.labels)
    for i in range(len(data)):
        attributes = data.attributes(i)
        name = TWIN_ATTRIBUTES[int(flipped[i])]
        attributes[name] = _flip(name, attributes[name])
        labels[i] = encode_labels(attributes)
        images[i] = render(attributes, int(data.identities[i]), int(data.seeds[i]), size)
    return PortraitSet(images, labels, data.identities.copy(), data.seeds.copy()), flipped


def cached_twins(path: Path, data: PortraitSet, seed: int, size: int) -> PortraitSet:
    """``twin_set`` kept in ``path`` (an .npz), rendered only when absent or made for another set."""
    path = Path(path)
    if path.is_file():
        saved = np.load(path)
        if len(saved["images"]) == len(data) and saved["labels"].shape[1] == len(NAMES) and (saved["seeds"] == data.seeds).all():
            return PortraitSet(saved["images"], saved["labels"], saved["identities"], saved["seeds"])
    twins, _ = twin_set(data, seed, size)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, images=twins.images, labels=twins.labels, identities=twins.identities, seeds=twins.seeds)
    return twins


def paired_renders(name: str, pairs: int, seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``pairs`` fresh portraits (novel attributes drawn too, identities no training set has)
    with ``name`` shown, and the same portraits without it."""
    rng = np.random.default_rng([seed, TWIN_ATTRIBUTES.index(name)])
    shown, hidden = [], []
    on, off = BY_NAME[name].values[1], BY_NAME[name].values[0]
    for _ in range(pairs):
        attributes = sample_attributes(rng, novel=True)
        identity, grain = int(rng.integers(N_IDENTITIES, 2 * N_IDENTITIES)), int(rng.integers(0, 2**31))
        shown.append(render({**attributes, name: on}, identity, grain, size))
        hidden.append(render({**attributes, name: off}, identity, grain, size))
    return np.stack(shown), np.stack(hidden)


def paired_wins(bundle, name: str, pairs: int, seed: int, size: int) -> dict[str, float]:
    """How a CLIP (an open_clip bundle of the zoo) reads ``name`` on twins: the mean cosine
    of the attribute's phrase with the image that shows it and with the one that does not,
    their mean paired difference, and ``wins``, the share of pairs where the image that
    shows it is the closer (0.5: the CLIP cannot tell)."""
    import torch

    from spf_bench.world.captions import attribute_phrase
    from spf_bench.world.clip_batches import normalise

    shown, hidden = paired_renders(name, pairs, seed, size)
    with torch.no_grad():
        text = torch.nn.functional.normalize(bundle.encode_text([attribute_phrase(name, BY_NAME[name].values[1])]), dim=-1)[0]
        cos = [(torch.nn.functional.normalize(bundle.encode_image(normalise(x)), dim=-1) @ text).numpy() for x in (shown, hidden)]
    diff = cos[0] - cos[1]
    return {"with": float(cos[0].mean()), "without": float(cos[1].mean()), "paired_diff": float(diff.mean()),
            "wins": float((diff > 0).mean())}
