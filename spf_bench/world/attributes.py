"""The synthetic world's attributes: names, values, categories, and how they are sampled.

Every attribute belongs to one of the five categories of the paper's Tab. 3 (facial
attributes, clothing, image style, appearance, accessories) or is the background. An
attribute is *categorical* (a caption may leave it unsaid, and then the image may show any
value) or *presence* (glasses, hat, beard: an unsaid presence attribute is absent, because
a caption that says nothing about glasses describes a person without them, as portrait
captions do).
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


ATTRIBUTES: tuple[Attribute, ...] = (
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
BY_NAME = {a.name: a for a in ATTRIBUTES}
NAMES = tuple(a.name for a in ATTRIBUTES)

# Identity factors: continuous face geometry, each in [0, 1], fixed per identity.
IDENTITY_FACTORS = ("face_width", "face_height", "eye_spacing", "eye_size", "nose_length", "nose_width", "mouth_width", "brow_tilt")


def index_of(name: str, value: str) -> int:
    return BY_NAME[name].values.index(value)


def sample_attributes(rng: np.random.Generator) -> dict[str, str]:
    """One portrait's attribute values, uniform for categorical ones."""
    out = {}
    for attr in ATTRIBUTES:
        if attr.presence:
            out[attr.name] = "yes" if rng.random() < attr.prior_yes else "no"
        else:
            out[attr.name] = attr.values[int(rng.integers(len(attr.values)))]
    return out


def identity_factors(identity: int) -> dict[str, float]:
    """The face geometry of identity number ``identity``: the same number, the same face."""
    rng = np.random.default_rng([0x1D, int(identity)])
    return {name: float(v) for name, v in zip(IDENTITY_FACTORS, rng.random(len(IDENTITY_FACTORS)))}


def chance_accuracy() -> float:
    """Mean per-attribute accuracy of guessing each attribute's most likely value."""
    accs = [max(a.prior_yes, 1 - a.prior_yes) if a.presence else 1 / len(a.values) for a in ATTRIBUTES]
    return float(np.mean(accs))
