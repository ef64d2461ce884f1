"""The synthetic world's attributes: names, values, categories, and how they are sampled.

Every attribute belongs to one of the five categories of the paper's Tab. 3 (facial
attributes, clothing, image style, appearance, accessories) or is the background. An
attribute is *categorical* (a caption may leave it unsaid, and then the image may show any
value) or *presence* (glasses, hat, beard: an unsaid presence attribute is absent, because
a caption that says nothing about glasses describes a person without them, as portrait
captions do).

The world has two parts. The *known* attributes are the ones the shipped diffusion model was
trained on. The *novel* attributes (freckles, a tie, a watercolour wash, a teal hair streak,
earrings: one per Tab. 3 category) are presence attributes the renderer draws and the oracle
and the world's CLIP know, but no training render or caption of the shipped diffusion model
ever showed: they are what a user would fine-tune it to learn. An attribute dictionary may
leave them out; a missing novel attribute is absent, so the known world renders exactly as
before they existed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Attribute:
    name: str
    category: str
    values: tuple[str, ...]
    presence: bool = False  # values are ("no", "yes") and an unsaid value means "no"
    prior_yes: float = 0.5  # probability of "yes" for presence attributes
    novel: bool = False  # unseen by the shipped diffusion model (see the module docstring)


KNOWN_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("smiling", "facial attributes", ("no", "yes")),
    Attribute("beard", "facial attributes", ("no", "yes"), presence=True, prior_yes=0.35),
    Attribute("shirt", "clothing", ("red", "blue", "yellow")),
    Attribute("style", "image style", ("photo", "pencil sketch", "cartoon")),
    Attribute("hair_colour", "appearance", ("black", "blond", "red")),
    Attribute("hair_length", "appearance", ("short", "long")),
    Attribute("skin", "appearance", ("pale", "tan", "dark")),
    Attribute("glasses", "accessories", ("no", "yes"), presence=True, prior_yes=0.35),
    Attribute("hat", "accessories", ("no", "yes"), presence=True, prior_yes=0.35),
    Attribute("background", "background", ("green", "blue", "grey", "pink")),
)
NOVEL_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("freckles", "facial attributes", ("no", "yes"), presence=True, prior_yes=0.35, novel=True),
    Attribute("tie", "clothing", ("no", "yes"), presence=True, prior_yes=0.35, novel=True),
    Attribute("watercolour", "image style", ("no", "yes"), presence=True, prior_yes=0.35, novel=True),
    Attribute("hair_streak", "appearance", ("no", "yes"), presence=True, prior_yes=0.35, novel=True),
    Attribute("earrings", "accessories", ("no", "yes"), presence=True, prior_yes=0.35, novel=True),
)
# Known first, so the known attributes keep their column in every label array.
ATTRIBUTES: tuple[Attribute, ...] = KNOWN_ATTRIBUTES + NOVEL_ATTRIBUTES
KNOWN_NAMES = tuple(a.name for a in KNOWN_ATTRIBUTES)
NOVEL_NAMES = tuple(a.name for a in NOVEL_ATTRIBUTES)
BY_NAME = {a.name: a for a in ATTRIBUTES}
NAMES = tuple(a.name for a in ATTRIBUTES)

# Identity factors: continuous face geometry, each in [0, 1], fixed per identity.
IDENTITY_FACTORS = ("face_width", "face_height", "eye_spacing", "eye_size", "nose_length", "nose_width", "mouth_width", "brow_tilt")


def index_of(name: str, value: str) -> int:
    return BY_NAME[name].values.index(value)


def sample_attributes(rng: np.random.Generator, novel: bool = False) -> dict[str, str]:
    """One portrait's attribute values, uniform for categorical ones.

    ``novel=False`` (the known world): the novel attributes are absent and ``rng`` is drawn
    exactly as before they existed, so every known set, caption and triple is unchanged.
    ``novel=True``: the novel attributes are drawn too, after the known ones.
    """
    out = {}
    for attr in ATTRIBUTES:
        if attr.novel and not novel:
            out[attr.name] = "no"
        elif attr.presence:
            out[attr.name] = "yes" if rng.random() < attr.prior_yes else "no"
        else:
            out[attr.name] = attr.values[int(rng.integers(len(attr.values)))]
    return out


def value_of(attributes: dict[str, str], name: str) -> str:
    """``attributes[name]``, where a dictionary of the known world may leave a novel attribute out."""
    if name in attributes:
        return attributes[name]
    if BY_NAME[name].novel:
        return "no"
    raise KeyError(name)


def identity_factors(identity: int) -> dict[str, float]:
    """The face geometry of identity number ``identity``: the same number, the same face."""
    rng = np.random.default_rng([0x1D, int(identity)])
    return {name: float(v) for name, v in zip(IDENTITY_FACTORS, rng.random(len(IDENTITY_FACTORS)))}


def chance_accuracy(attributes: tuple[Attribute, ...] = KNOWN_ATTRIBUTES) -> float:
    """Mean per-attribute accuracy of guessing each attribute's most likely value."""
    accs = [max(a.prior_yes, 1 - a.prior_yes) if a.presence else 1 / len(a.values) for a in attributes]
    return float(np.mean(accs))
