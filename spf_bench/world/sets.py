"""The pollution lab's data: a fine-tuning set with a spurious correlation, its control,
and the prompts the fine-tuned models are measured on.

Fine-tuning set: every portrait shows the target value (default: glasses) and also one fixed
value of another attribute (default: a green background); captions are split into a base
caption that leaves both unsaid and the target caption ("wearing glasses"), as a user's
customization data would be. The control set is the same with the other attribute drawn at
random, so any difference between the two fine-tunes is due to the correlation alone.
The images are renders, so the training data is exactly what it claims to be, and each row
records the target's ground-truth region as a mask image (``target_mask``, see
``spf_train.data``), which stage 2's oracle-mask variant reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from spf_bench.world.attributes import BY_NAME, sample_attributes
from spf_bench.world.captions import attribute_phrase, compose_caption
from spf_bench.world.dataset import N_IDENTITIES
from spf_bench.world.masks import attribute_mask
from spf_bench.world.render import render


@dataclass(frozen=True)
class Correlation:
    target: str = "glasses"
    target_value: str = "yes"
    spurious: str = "background"
    spurious_value: str = "green"

    def target_caption(self) -> str:
        return attribute_phrase(self.target, self.target_value)


def render_rows(root: Path, subfolder: str, corr: Correlation, n: int, seed: int, size: int, correlated: bool) -> list[dict]:
    """Render ``n`` portraits into ``root / subfolder``; return their metadata rows (file
    names relative to ``root``), for a ``metadata.jsonl`` in ``root``."""
    (root / subfolder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([0x1AB, seed, int(correlated)])
    rows = []
    for i in range(n):
        attrs = {**sample_attributes(rng), corr.target: corr.target_value}
        if correlated:
            attrs[corr.spurious] = corr.spurious_value
        identity = int(rng.integers(5 * N_IDENTITIES, 6 * N_IDENTITIES))
        render_seed = int(rng.integers(2**31))
        name = f"{subfolder}/{i:05d}.png" if subfolder else f"{i:05d}.png"
        Image.fromarray(render(attrs, identity, render_seed, size)).save(root / name)
        mask_name = f"{subfolder}/target_masks/{i:05d}.png" if subfolder else f"target_masks/{i:05d}.png"
        save_mask(root / mask_name, attribute_mask(attrs, identity, size, corr.target))
        base = compose_caption(attrs, rng, omit=(corr.target, corr.spurious))
        rows.append({"file_name": name, "base_caption": base, "target_caption": corr.target_caption(),
                     "category": BY_NAME[corr.target].category, "attributes": attrs,
                     # what re-renders the portrait and its region masks exactly
                     "identity": identity, "render_seed": render_seed, "target_mask": mask_name,
                     # TokenCompose's grounding (spf_train.tokencompose_data): the target phrase
                     # on its exact region, where a photographed set would need SAM.
                     "masks": {corr.target_caption(): mask_name}})
    return rows


def save_mask(path: Path, mask: np.ndarray) -> None:
    """A bool mask as a greyscale PNG, white inside."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(path)


def write_metadata(folder: Path, rows: list[dict]) -> None:
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")


def write_set(folder: Path, corr: Correlation, n: int, seed: int, size: int, correlated: bool) -> Path:
    """Render ``n`` portraits into ``folder`` with a ``metadata.jsonl`` spf-train reads."""
    write_metadata(folder, render_rows(folder, "", corr, n, seed, size, correlated))
    return folder


def base_prompts(corr: Correlation, n: int, seed: int) -> list[str]:
    """Base captions that ask for another value of the spurious attribute and leave the target
    unsaid (so it is absent): any spurious value a model draws here is pollution."""
    rng = np.random.default_rng([0xBA5E, seed])
    others = [v for v in BY_NAME[corr.spurious].values if v != corr.spurious_value]
    prompts = []
    for _ in range(n):
        attrs = sample_attributes(rng)
        attrs[corr.spurious] = others[int(rng.integers(len(others)))]
        if BY_NAME[corr.target].presence:
            attrs[corr.target] = "no"
        prompts.append(compose_caption(attrs, rng, omit=(corr.target,), always=(corr.spurious,)))
    return prompts
