"""Ground-truth region masks: where in the image each attribute lives.

An attribute's mask is the set of output pixels that can change when only that attribute
changes: the pixels of its own parts (the shirt for the shirt colour) together with every
pixel whose part label differs between the portrait and the same portrait with another
value of the attribute (the hair a long cut adds, the mouth a smile opens), widened by the
outline width of the cartoon and sketch styles. The image style's mask is the whole image,
and so is the watercolour wash's; on a watercolour portrait every mask is widened by how far
its pigment bleeds.
"""

from __future__ import annotations

import numpy as np

from spf_bench.world.attributes import ATTRIBUTES, value_of
from spf_bench.world.render import (BEARD, BG, EARRING, FRECKLE, GLASSES, HAIR, HAT, MOUTH, NOSE, SHIRT, SKIN, STREAK, TEETH, TIE,
                     label_map, supersample, watercolour_bleed)

WHOLE_IMAGE = ("style", "watercolour")

OWN_LABELS = {
    "smiling": (MOUTH, TEETH), "beard": (BEARD,), "shirt": (SHIRT,), "hair_colour": (HAIR,),
    "hair_length": (HAIR,), "skin": (SKIN, NOSE), "glasses": (GLASSES,), "hat": (HAT,), "background": (BG,),
    "freckles": (FRECKLE,), "tie": (TIE,), "hair_streak": (STREAK,), "earrings": (EARRING,),
}


def _grow(mask: np.ndarray, steps: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(steps):
        grown = out.copy()
        grown[1:, :] |= out[:-1, :]
        grown[:-1, :] |= out[1:, :]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def _downsample_any(mask: np.ndarray, size: int) -> np.ndarray:
    ss = supersample(size)
    return mask.reshape(size, ss, size, ss).any(axis=(1, 3))


def attribute_masks(attributes: dict[str, str], identity: int, size: int = 64) -> dict[str, np.ndarray]:
    """{attribute name: bool [size, size]} for every attribute of the world."""
    labels = label_map(attributes, identity, size)
    return {attr.name: _mask(attr, attributes, identity, size, labels) for attr in ATTRIBUTES}


def attribute_mask(attributes: dict[str, str], identity: int, size: int, name: str) -> np.ndarray:
    """One attribute's mask of :func:`attribute_masks`, without computing the others."""
    attr = next(a for a in ATTRIBUTES if a.name == name)
    return _mask(attr, attributes, identity, size, label_map(attributes, identity, size))


def _mask(attr, attributes: dict[str, str], identity: int, size: int, labels: np.ndarray) -> np.ndarray:
    if attr.name in WHOLE_IMAGE:
        return np.ones((size, size), dtype=bool)
    region = np.isin(labels, OWN_LABELS[attr.name])
    moved = np.zeros_like(region)
    for value in attr.values:
        if value != value_of(attributes, attr.name):
            other = label_map({**attributes, attr.name: value}, identity, size)
            moved |= other != labels
    # Where labels move, the outlines that follow them move too.
    # The thickest outline (cartoon) is one output pixel wide.
    region |= _grow(moved, supersample(size) + 1) if moved.any() else moved
    if value_of(attributes, "watercolour") == "yes":
        # The wash blurs over a square; 2 x bleed four-neighbour steps cover that square.
        region = _grow(region, 2 * watercolour_bleed(supersample(size)))
    return _downsample_any(region, size)
