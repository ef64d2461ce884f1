"""Customization sets: fine-tuning data that teaches the novel attributes the way a user's
own photos would, narrow distribution and all.

A user who fine-tunes a portrait model to draw, say, freckles brings a few dozen pictures
of a few people, taken in a few places, and captions each with what they want taught. The
model then learns the set's other regularities too (those people's faces, that wall, that
shirt, that lighting) and draws them where nobody asked: semantic pollution. A
``CustomSet`` reproduces that from the set's distribution alone:

- every portrait shows one of the taught (novel) attributes, dealt in turn;
- its identity comes from a small pool (``identities``);
- biased attributes (``biases``: ``background=green:0.8`` means a green background in 80%
  of the portraits, the rest spread evenly over the other backgrounds) are drawn from their
  bias; every other attribute is drawn as in the world;
- the caption says the taught attribute and leaves each biased attribute unsaid, except now
  and then (``say_biased``), as a user describes what they want and not the wall behind;
  other attributes are said as the world's captions say them.

Each row also records the taught attribute's exact region (``target_mask``, the mask stage 2's
oracle-mask variant reads) and grounds its target caption on it (``masks``, TokenCompose's
grounding), as the world's other sets do.

:func:`base_prompts` and :func:`dealt_targets` give the prompts a model fine-tuned on such a
set is measured on (the pollution lab's customization mode).

Its control teaches the same attributes with the same number of portraits and the same
caption rule, but with identities from the whole range and no bias, so any difference
between the two fine-tunes comes from the narrow distribution. No image carries a label or
mark the other lacks.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from spf_bench.core.atomic import write_text_atomic
from spf_bench.core.errors import SpfError
from spf_bench.world.attributes import BY_NAME, NOVEL_NAMES, sample_attributes
from spf_bench.world.captions import attribute_phrase, compose_caption, parse_caption
from spf_bench.world.dataset import N_IDENTITIES
from spf_bench.world.masks import attribute_mask
from spf_bench.world.render import render
from spf_bench.world.sets import save_mask

# Identities of customization sets: a range no other set of the world draws from.
IDENTITY_RANGE = (7 * N_IDENTITIES, 8 * N_IDENTITIES)


@dataclass(frozen=True)
class Bias:
    attribute: str
    value: str
    share: float

    @classmethod
    def parse(cls, text: str) -> "Bias":
        """``ATTRIBUTE=VALUE:SHARE``, e.g. ``background=green:0.8``."""
        pair, _, share = text.partition(":")
        name, _, value = pair.partition("=")
        if name not in BY_NAME or value not in BY_NAME[name].values or BY_NAME[name].novel:
            known = "; ".join(f"{a.name}: {', '.join(a.values)}" for a in BY_NAME.values() if not a.novel)
            raise SpfError(f"The bias '{text}' is not ATTRIBUTE=VALUE:SHARE of a known attribute of the synthetic world ({known}).")
        try:
            number = float(share)
        except ValueError:
            raise SpfError(f"The bias '{text}' has no share after ':' (a number between 0 and 1, e.g. {pair}:0.8).") from None
        if not 0.0 <= number <= 1.0:
            raise SpfError(f"The bias '{text}' has share {number}; a share is between 0 and 1.")
        return cls(name, value, number)

    def draw(self, rng: np.random.Generator) -> str:
        if rng.random() < self.share:
            return self.value
        others = [v for v in BY_NAME[self.attribute].values if v != self.value]
        return others[int(rng.integers(len(others)))]


DEFAULT_BIASES = (Bias("background", "green", 0.8), Bias("shirt", "red", 0.7), Bias("style", "photo", 0.7))


@dataclass(frozen=True)
class CustomSet:
    targets: tuple[str, ...] = NOVEL_NAMES  # the novel attributes taught, dealt in turn
    images: int = 112
    identities: int = 4  # the pool every portrait's identity comes from
    biases: tuple[Bias, ...] = DEFAULT_BIASES
    say_biased: float = 0.1  # chance a caption says a biased attribute
    seed: int = 0
    control: bool = False  # the same attributes without the narrow distribution

    def __post_init__(self):
        if self.images < 1:
            raise SpfError(f"A customization set needs at least one image, not {self.images}.")
        if self.identities < 1:
            raise SpfError(f"A customization set needs at least one identity, not {self.identities}.")
        if not 0.0 <= self.say_biased <= 1.0:
            raise SpfError(f"The chance of saying a biased attribute is between 0 and 1, not {self.say_biased}.")
        if self.seed < 0:
            raise SpfError(f"A customization set's seed must be zero or more, not {self.seed}.")
        for name in self.targets:
            if name not in BY_NAME or not BY_NAME[name].presence:
                raise SpfError(f"'{name}' is not a presence attribute of the synthetic world to teach (e.g. {', '.join(NOVEL_NAMES)}).")
        biased = [b.attribute for b in self.biases]
        if len(set(biased)) != len(biased):
            raise SpfError(f"The biases name an attribute twice ({', '.join(biased)}); give one bias per attribute.")
        clash = set(biased) & set(self.targets)
        if clash:
            raise SpfError(f"'{sorted(clash)[0]}' is both taught and biased; bias only other attributes.")

    def describe(self) -> dict:
        return {**asdict(self), "biases": [asdict(b) for b in self.biases]}


def _pool(spec: CustomSet, rng: np.random.Generator) -> np.ndarray:
    lo, hi = IDENTITY_RANGE
    return rng.choice(np.arange(lo, hi), size=spec.identities, replace=False)


def portraits(spec: CustomSet) -> list[dict]:
    """What the set holds, before rendering: per portrait its attributes, identity, render
    seed, base caption and target caption (all drawn from ``spec.seed``)."""
    rng = np.random.default_rng([0xC057, spec.seed, int(spec.control)])
    pool = _pool(spec, np.random.default_rng([0x1D5, spec.seed]))
    biased = tuple(b.attribute for b in spec.biases)
    rows = []
    for i in range(spec.images):
        target = spec.targets[i % len(spec.targets)]
        attrs = {**sample_attributes(rng), target: "yes"}
        if spec.control:
            identity = int(rng.integers(*IDENTITY_RANGE))
        else:
            identity = int(pool[int(rng.integers(len(pool)))])
            for bias in spec.biases:
                attrs[bias.attribute] = bias.draw(rng)
        unsaid = tuple(name for name in biased if rng.random() >= spec.say_biased)
        rows.append({
            "attributes": attrs, "identity": identity, "render_seed": int(rng.integers(2**31)),
            "base_caption": compose_caption(attrs, rng, omit=(target, *unsaid)),
            "target_caption": attribute_phrase(target, "yes"), "target": target,
        })
    return rows


def write(folder: Path, spec: CustomSet, size: int = 32) -> Path:
    """Render the set into ``folder`` with a ``metadata.jsonl`` spf-train reads and a
    ``customization.json`` with the spec and the regularities the set actually holds."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, row in enumerate(portraits(spec)):
        name = f"images/{i:05d}.png"
        Image.fromarray(render(row["attributes"], row["identity"], row["render_seed"], size)).save(folder / name)
        mask_name = f"target_masks/{i:05d}.png"
        save_mask(folder / mask_name, attribute_mask(row["attributes"], row["identity"], size, row["target"]))
        rows.append({"file_name": name, **{k: v for k, v in row.items() if k != "target"}, "category": suite_category(row["target"]),
                     "target_mask": mask_name, "masks": {row["target_caption"]: mask_name}})
    write_text_atomic(folder / "metadata.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    write_text_atomic(folder / "customization.json", json.dumps({"spec": spec.describe(), "held": regularities(rows, spec)}, indent=1) + "\n")
    return folder


def suite_category(name: str) -> str:
    """The suite's category name of an attribute: the world's with underscores ("image style" -> "image_style")."""
    return BY_NAME[name].category.replace(" ", "_")


def dealt_targets(targets: tuple[str, ...], n: int) -> list[str]:
    """The taught attribute of each of ``n`` portraits or prompts: ``targets`` dealt in turn."""
    return [targets[i % len(targets)] for i in range(n)]


def base_prompts(biases: tuple[Bias, ...], targets: tuple[str, ...], n: int, seed: int) -> list[str]:
    """Captions of the known world that say every biased attribute with a value other than its
    biased one and no novel attribute: a model that draws a biased value here draws what the
    prompt did not ask for, which is the set's pollution. The taught ``targets`` are absent
    and unsaid (a known one as well), so each prompt can be customized with any of them."""
    rng = np.random.default_rng([0xC0B5, seed])
    prompts = []
    for _ in range(n):
        attrs = sample_attributes(rng)  # the known world: every novel attribute absent, and unsaid
        for bias in biases:
            others = [v for v in BY_NAME[bias.attribute].values if v != bias.value]
            attrs[bias.attribute] = others[int(rng.integers(len(others)))]
        attrs.update({name: "no" for name in targets})
        prompts.append(compose_caption(attrs, rng, omit=tuple(targets), always=tuple(b.attribute for b in biases)))
    return prompts


def regularities(rows: list[dict], spec: CustomSet) -> dict:
    """What a set's portraits hold: distinct identities, each biased attribute's value
    shares, and how often captions say them."""
    out = {"portraits": len(rows), "distinct_identities": len({r["identity"] for r in rows})}
    for bias in spec.biases:
        values = [r["attributes"][bias.attribute] for r in rows]
        out[bias.attribute] = {
            "shares": {v: values.count(v) / len(rows) for v in BY_NAME[bias.attribute].values},
            "said_in_captions": float(np.mean([_says(r["base_caption"], bias.attribute) for r in rows])),
        }
    return out


def _says(caption: str, name: str) -> bool:
    return name in parse_caption(caption, complete=False)
