"""Exact metrics of customization in the synthetic world, per pair (original O, customized C).

- target accuracy: the oracle reads, in C, every value the target caption asks for;
- attribute preservation: the share of the attributes the target does not touch whose
  oracle label in C equals the one in O (semantic pollution lowers it);
- identity preservation: cosine of the world's identity embeddings of O and C, which the
  evaluator computes through its face backbone (under synth, the world's recogniser).
Unlike the eight general metrics these need no proxy: the oracle is right on renders at
least 98% of the time and the identity embedder was trained on the renderer's own factors.
The evaluator scores them under ``--weights synth`` as Target-Acc, Attr-Pres and ID-Pres
(:mod:`spf_bench.metrics.world`), with the per-pair math below.
"""

from __future__ import annotations

import numpy as np

from spf_bench.world.attributes import NAMES, index_of
from spf_bench.world.captions import parse_caption


def target_attributes(target_caption: str) -> dict[str, str]:
    asked = parse_caption(target_caption, complete=False)
    if not asked:
        from spf_bench.core.errors import SpfError

        raise SpfError(f"The target caption '{target_caption}' names no attribute of the synthetic world.")
    return asked


def pair_scores(original_labels: np.ndarray, custom_labels: np.ndarray, target_caption: str) -> dict[str, float]:
    """Target accuracy and attribute preservation from oracle labels (value indices per attribute)."""
    asked = target_attributes(target_caption)
    hit = [custom_labels[NAMES.index(k)] == index_of(k, v) for k, v in asked.items()]
    kept = [custom_labels[i] == original_labels[i] for i, name in enumerate(NAMES) if name not in asked]
    return {"target_accuracy": float(np.mean(hit)), "attribute_preservation": float(np.mean(kept))}
