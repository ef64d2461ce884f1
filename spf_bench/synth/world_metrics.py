"""Exact metrics of customization in the synthetic world, per pair (original O, customized C).

- target accuracy: the oracle reads, in C, every value the target caption asks for;
- attribute preservation: the share of the attributes the target does not touch whose
  oracle label in C equals the one in O (semantic pollution lowers it);
- identity preservation: cosine of the world's identity embeddings of O and C (NaN when
  either has no detected face).
Unlike the eight general metrics these need no proxy: the oracle is right on renders at
least 98% of the time and the identity embedder was trained on the renderer's own factors.
The evaluator scores them under ``--weights synth`` as Target-Acc, Attr-Pres and ID-Pres
(:mod:`spf_bench.metrics.world`), with the same per-pair math.
"""

from __future__ import annotations

import numpy as np

from .attributes import NAMES, index_of
from .captions import parse_caption

METRICS = ("target_accuracy", "attribute_preservation", "identity_preservation")


def target_attributes(target_caption: str) -> dict[str, str]:
    asked = parse_caption(target_caption, complete=False)
    if not asked:
        from ..errors import SpfError

        raise SpfError(f"The target caption '{target_caption}' names no attribute of the synthetic world.")
    return asked


def pair_scores(original_labels: np.ndarray, custom_labels: np.ndarray, target_caption: str) -> dict[str, float]:
    """Target accuracy and attribute preservation from oracle labels (value indices per attribute)."""
    asked = target_attributes(target_caption)
    hit = [custom_labels[NAMES.index(k)] == index_of(k, v) for k, v in asked.items()]
    kept = [custom_labels[i] == original_labels[i] for i, name in enumerate(NAMES) if name not in asked]
    return {"target_accuracy": float(np.mean(hit)), "attribute_preservation": float(np.mean(kept))}


def identity_similarity(faces, original: np.ndarray, custom: np.ndarray) -> float:
    a, b = faces.largest_face_embedding(original), faces.largest_face_embedding(custom)
    if a is None or b is None:
        return float("nan")
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def score_pairs(oracle, faces, originals: np.ndarray, customs: np.ndarray, target_captions: list[str]) -> dict[str, np.ndarray]:
    """Per-pair values of the three metrics for uint8 image batches [N, S, S, 3]."""
    o_labels, c_labels = oracle.predict(originals), oracle.predict(customs)
    rows = [pair_scores(o, c, t) for o, c, t in zip(o_labels, c_labels, target_captions)]
    out = {k: np.array([r[k] for r in rows]) for k in ("target_accuracy", "attribute_preservation")}
    out["identity_preservation"] = np.array([identity_similarity(faces, o, c) for o, c in zip(originals, customs)])
    return out
