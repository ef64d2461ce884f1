"""CLIP-T: cosine similarity of the customized image's CLIP embedding and a caption's.

The caption is the target caption c_t by default; ``caption="full"`` uses the full caption
(base ⊕ target). Unlike torchmetrics' CLIPScore the value is the raw cosine: not scaled by
100 and not clipped at 0, so a mean over pairs is unbiased.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from spf_bench.metrics.base import COSINE, RESPONSIVENESS, PairMetric, cosine_rows
from spf_bench.triples.captions import full_caption

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
    in_paper: ClassVar[bool] = True
    default: ClassVar[bool] = True
    tradeoff_rank: ClassVar[int | None] = 1
    value_range: ClassVar[tuple[float, float]] = COSINE
    higher_is_better = True

    @classmethod
    def options_record(cls, options) -> dict:
        return {**cls.record_options, "caption": options.clip_t_caption}

    @classmethod
    def build(cls, options, backbones) -> ClipTextAlignment:
        return cls(caption=options.clip_t_caption)

    def __init__(self, caption: str = "target", **kwargs) -> None:
        super().__init__(**kwargs)
        if caption not in CAPTIONS:
            raise ValueError(f"caption must be one of {CAPTIONS}, not {caption!r}")
        self.caption = caption

    def update(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> None:
        self._append(_clip_text_update(image_emb, text_emb))

    def feed(self, batch) -> None:
        texts = [p.target_caption if self.caption == "target" else full_caption(p.base_caption, p.target_caption)
                 for p in batch.pairs]
        text_emb = batch.call("clip", "encode_texts", texts)
        self.update(batch.stacked("clip", "image")[1], torch.from_numpy(text_emb))
