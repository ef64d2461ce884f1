"""CLIP-I: cosine similarity of the CLIP image embeddings of original and customized image."""

from __future__ import annotations

from typing import ClassVar

import torch

from spf_bench.metrics.base import COSINE, PRESERVATION, PairMetric, cosine_rows


def _clip_image_update(emb_o: torch.Tensor, emb_c: torch.Tensor) -> torch.Tensor:
    return cosine_rows(emb_o, emb_c)


def clip_image_similarity(emb_o: torch.Tensor, emb_c: torch.Tensor) -> torch.Tensor:
    """Functional twin: per-pair CLIP-I from image embeddings [N, D]."""
    return _clip_image_update(emb_o, emb_c)


class ClipImageSimilarity(PairMetric):
    name: ClassVar[str] = "CLIP-I"
    group: ClassVar[str] = PRESERVATION
    backbones: ClassVar[tuple[str, ...]] = ("clip",)
    in_paper: ClassVar[bool] = True
    default: ClassVar[bool] = True
    tradeoff_rank: ClassVar[int | None] = 1
    value_range: ClassVar[tuple[float, float]] = COSINE
    higher_is_better = True

    def update(self, emb_o: torch.Tensor, emb_c: torch.Tensor) -> None:
        self._append(_clip_image_update(emb_o, emb_c))

    def feed(self, batch) -> None:
        self.update(*batch.stacked("clip", "image"))
