"""Builders of a synthetic-world triple set and of method runs whose edits are known exactly.

Imported by the other ``test_world_metrics_*`` modules; it holds one sanity test of its own.
Every original is a render of the world; each "method" redraws it with the target attribute
set to the target value and, depending on the method, one more attribute changed or another
identity. Only portraits the shipped oracle reads exactly are used, so the tests check the
evaluator's plumbing and arithmetic, not the oracle's few errors (a retrained oracle may err
on other renders).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from spf_bench.world.attributes import BY_NAME, sample_attributes
from spf_bench.world.captions import attribute_phrase, compose_caption
from spf_bench.world.dataset import encode_labels
from spf_bench.world.render import render

# Targets the world can state as a target phrase, each with the value it asks for (None: the
# first value the original does not have).
TARGETS = (("glasses", "yes"), ("hat", "yes"), ("background", None), ("shirt", None), ("smiling", None), ("beard", "yes"))
FIRST_IDENTITY = 5000  # far from the training identities (0..999) and from those of 'synth check'
STRANGER_OFFSET = 777  # the "stranger" method draws identity + this


@dataclass
class WorldCase:
    """One triple: the original's attributes and the edit every method starts from."""

    id: str
    identity: int
    seed: int
    original: dict[str, str]
    target: str
    value: str
    other: str  # the attribute the polluting method also changes

    @property
    def edited(self) -> dict[str, str]:
        return {**self.original, self.target: self.value}

    @property
    def polluted(self) -> dict[str, str]:
        values = BY_NAME[self.other].values
        changed = values[(values.index(self.original[self.other]) + 1) % len(values)]
        return {**self.edited, self.other: changed}


METHODS = {
    "clean": lambda c, size: render(c.edited, c.identity, c.seed, size),
    "polluted": lambda c, size: render(c.polluted, c.identity, c.seed, size),
    "stranger": lambda c, size: render(c.edited, c.identity + STRANGER_OFFSET, c.seed, size),
}


def _case(index: int, rng: np.random.Generator) -> WorldCase:
    target, value = TARGETS[index % len(TARGETS)]
    original = sample_attributes(rng)
    if value is None:
        value = next(v for v in BY_NAME[target].values if v != original[target])
    else:
        original[target] = "no"  # a presence target is absent in the original
    other = "shirt" if target == "background" else "background"
    return WorldCase(f"w{index:03d}", FIRST_IDENTITY + index, index, original, target, value, other)


def readable_cases(oracle, n: int, size: int, seed: int = 0, tries: int = 80) -> list[WorldCase]:
    """The first ``n`` cases whose original and every method's image the oracle reads exactly."""
    rng = np.random.default_rng([0x3E7, seed])
    cases = []
    for index in range(tries):
        case = _case(index, rng)
        truth = [case.original, case.edited, case.polluted, case.edited]
        images = [render(case.original, case.identity, case.seed, size)] + [draw(case, size) for draw in METHODS.values()]
        if (oracle.predict(np.stack(images)) == np.array([encode_labels(t) for t in truth])).all():
            cases.append(case)
        if len(cases) == n:
            return cases
    raise AssertionError(f"the oracle misread too many renders: {len(cases)} of {tries} readable, {n} needed")


def _save(image: np.ndarray, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_world_triples(root: Path, cases: list[WorldCase], size: int, seed: int = 0) -> Path:
    """A triple set in the layout of docs/formats.md, with the world's own captions."""
    rng = np.random.default_rng([0xCA7, seed])
    triples = []
    for case in cases:
        sha = _save(render(case.original, case.identity, case.seed, size), root / "originals" / f"{case.id}.png")
        triples.append({"id": case.id, "category": BY_NAME[case.target].category,
                        "base_caption": compose_caption(case.original, rng, omit=(case.target,)),
                        "target_caption": attribute_phrase(case.target, case.value),
                        "seed": case.seed, "sha256": sha})
    manifest = {"set": {"base_model": "synthetic world renders", "height": size, "width": size, "weights": "synth"},
                "triples": triples}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


def write_world_method(out: Path, method: str, cases: list[WorldCase], size: int) -> Path:
    """``out/<method>/images/<id>.png``, drawn by one of ``METHODS``."""
    for case in cases:
        _save(METHODS[method](case, size), out / method / "images" / f"{case.id}.png")
    return out / method

