"""CLIP-T: cosine similarity of the customized image's CLIP embedding and a caption's.

The caption is the target caption c_t by default; ``caption="full"`` uses the full caption
(base ⊕ target). Unlike torchmetrics' CLIPScore the value is the raw cosine: not scaled by
100 and not clipped at 0, so a mean over pairs is unbiased.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from spf_bench.metrics.base import RESPONSIVENESS, PairMetric, cosine_rows

CAPTIONS = ("target", "full")


def _clip_text_update(image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    return cosine_rows(image_emb, text_emb)


def clip_text_alignment(image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """Functional twin: per-pair CLIP-T from image and text embeddings [N, D]."""
    return _clip_text_update(image_emb, text_emb)


class ClipTextAlignment(PairMetric):
    name: ClassVar[str] = "CLIP-T"
    group: ClassVar[str] = RESPONSIVENESS
    backbones: ClassVar[tuple[str, ...]] = ("clip",)
    higher_is_better = True

    def __init__(self, caption: str = "target", **kwargs) -> None:
        super().__init__(**kwargs)
        if caption not in CAPTIONS:
            raise ValueError(f"caption must be one of {CAPTIONS}, not {caption!r}")
        self.caption = caption

    def update(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> None:
        self._append(_clip_text_update(image_emb, text_emb))
