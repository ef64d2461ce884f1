"""Captions of the synthetic world, and their exact inverse.

A caption is a head ("a photo of a person", "a portrait of a person") followed by phrases
in a random order, joined by ", " (and now and then " and "). Categorical attributes are
each left unsaid now and then; presence attributes (glasses, hat, beard) are always said
when present and sometimes said when absent ("without glasses"). Varied order and optional
phrases keep a text encoder from reading attributes off token positions.

A novel attribute (see ``attributes.py``) is said when present and never said absent, and
an absent one draws nothing from the generator, so every caption of the known world is
word for word what it was before the novel attributes existed.

``parse_caption`` inverts any caption this module writes: it returns every attribute the
caption fixes, including absent presence attributes that it leaves unsaid.
"""

from __future__ import annotations

import re

import numpy as np

from spf_bench.world.attributes import ATTRIBUTES, BY_NAME, value_of

STYLE_HEADS = {"photo": "a photo of a person", "pencil sketch": "a pencil sketch of a person", "cartoon": "a cartoon of a person"}
NEUTRAL_HEAD = "a portrait of a person"
STYLE_PHRASES = {"photo": "photographic style", "pencil sketch": "pencil sketch style", "cartoon": "cartoon style"}
PRESENT = {"glasses": ("wearing glasses", "with glasses"), "hat": ("wearing a hat", "with a hat"), "beard": ("with a beard", "bearded")}
ABSENT = {"glasses": ("without glasses", "no glasses"), "hat": ("without a hat", "no hat"), "beard": ("clean-shaven", "without a beard")}
# The novel attributes' words: none is in any caption the shipped diffusion model was trained on.
PRESENT.update({
    "freckles": ("with freckles", "freckled"), "tie": ("wearing a tie", "with a tie"),
    "watercolour": ("painted in watercolour", "watercolour wash"),
    "hair_streak": ("with a teal hair streak", "with a streak of teal hair"),
    "earrings": ("wearing earrings", "with earrings"),
})
ABSENT.update({"freckles": ("without freckles",), "tie": ("without a tie",), "watercolour": ("without watercolour",),
               "hair_streak": ("without a hair streak",), "earrings": ("without earrings",)})
SMILE = {"yes": ("smiling", "with a smile"), "no": ("with a neutral expression", "not smiling")}

P_UNSAID = 0.15  # chance a categorical attribute is left out of a caption
P_SAY_ABSENT = 0.3  # chance an absent presence attribute is said to be absent


def attribute_phrase(name: str, value: str, variant: int = 0) -> str:
    """A phrase that states one attribute value (``variant`` picks among synonyms)."""
    if name in PRESENT:
        options = PRESENT[name] if value == "yes" else ABSENT[name]
        return options[variant % len(options)]
    if name == "smiling":
        return SMILE[value][variant % 2]
    if name == "shirt":
        return (f"wearing a {value} shirt", f"in a {value} shirt")[variant % 2]
    if name == "background":
        return (f"on a {value} background", f"in front of a {value} background")[variant % 2]
    if name == "skin":
        return f"with {value} skin"
    if name == "style":
        return STYLE_PHRASES[value]
    raise KeyError(name)


def compose_caption(attributes: dict[str, str], rng: np.random.Generator, omit: tuple[str, ...] = (), always: tuple[str, ...] = (),
                    novel_absent: bool = False) -> str:
    """A caption stating (most of) ``attributes``, phrases in a random order.

    ``omit``: attributes never said (a base caption leaves the target unsaid);
    ``always``: attributes always said; ``novel_absent``: absent novel attributes are said
    absent now and then, as known ones are (for models that learn the novel words).
    """
    said = {}
    for attr in ATTRIBUTES:
        value = value_of(attributes, attr.name)
        if attr.name in omit:
            continue
        if attr.novel and value == "no" and attr.name not in always and not novel_absent:
            continue  # never said absent, and nothing drawn (see the module docstring)
        if attr.name in always:
            said[attr.name] = value
        elif attr.presence:
            if value == "yes" or rng.random() < P_SAY_ABSENT:
                said[attr.name] = value
        elif rng.random() >= P_UNSAID:
            said[attr.name] = value
    phrases = []
    hair = [said[k] for k in ("hair_length", "hair_colour") if k in said]
    if hair:
        phrases.append(f"with {' '.join(hair)} hair")
    for name, value in said.items():
        if name in ("hair_length", "hair_colour", "style"):
            continue
        phrases.append(attribute_phrase(name, value, int(rng.integers(2))))
    head = NEUTRAL_HEAD
    if "style" in said:
        if rng.random() < 0.6:
            head = STYLE_HEADS[said["style"]]
        else:
            phrases.append(STYLE_PHRASES[said["style"]])
    order = rng.permutation(len(phrases))
    return _join(head, [phrases[i] for i in order], rng)


def _join(head: str, phrases: list[str], rng: np.random.Generator) -> str:
    if len(phrases) >= 2 and rng.random() < 0.3:
        return ", ".join([head, *phrases[:-2], f"{phrases[-2]} and {phrases[-1]}"])
    return ", ".join([head, *phrases])


_HAIR = re.compile(r"\bwith (?:(short|long) )?(?:(black|blond|red) )?hair\b")


def parse_caption(caption: str, complete: bool = True) -> dict[str, str]:
    """The attribute values a caption fixes.

    ``complete``: the caption is a whole portrait caption, so an unsaid presence attribute
    is absent; with ``complete=False`` (a target phrase such as "wearing glasses") only
    what the text states is returned.
    """
    text = caption.lower()
    found: dict[str, str] = {}
    for style, head in STYLE_HEADS.items():
        if text.startswith(head):
            found["style"] = style
    for style, phrase in STYLE_PHRASES.items():
        if phrase in text:
            found["style"] = style
    match = _HAIR.search(text)
    if match:
        if match.group(1):
            found["hair_length"] = match.group(1)
        if match.group(2):
            found["hair_colour"] = match.group(2)
    for name in ("shirt", "background", "skin"):
        for value in BY_NAME[name].values:
            if any(attribute_phrase(name, value, v) in text for v in (0, 1)):
                found[name] = value
    for value, options in SMILE.items():
        if any(re.search(rf"\b{o}\b", text) for o in options):
            found["smiling"] = value
    for name in PRESENT:
        if any(o in text for o in ABSENT[name]):
            found[name] = "no"
        elif any(o in text for o in PRESENT[name]):
            found[name] = "yes"
        elif complete:
            found[name] = "no"
    return found


def attribute_prompt(name: str, value: str) -> str:
    """A caption that states one attribute value and nothing else (for zero-shot reading)."""
    if name in ("hair_colour", "hair_length"):
        return f"{NEUTRAL_HEAD}, with {value} hair"
    if name == "style":
        return STYLE_HEADS[value]
    return f"{NEUTRAL_HEAD}, {attribute_phrase(name, value)}"
