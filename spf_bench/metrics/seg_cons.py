"""Seg-Cons: 100 × mean IoU of SAM's masks for the same point prompts on original and customized.

The SAM backbone prompts a fixed grid of points (16×16 by default) one point at a time and keeps
SAM's best single mask per point (highest predicted IoU of its three). Here each image arrives
as boolean masks [P, H, W]; the value of a pair is the mean over points of the IoU, × 100.
Two empty masks for a point count as full agreement (IoU 1): both images say "nothing here".
"""

from __future__ import annotations

from typing import ClassVar

import torch

from spf_bench.metrics.backbones import SamBackbone
from spf_bench.metrics.base import PRESERVATION, PairMetric


def _seg_cons_update(masks_o: torch.Tensor, masks_c: torch.Tensor) -> torch.Tensor:
    """Per-pair Seg-Cons [N] from boolean masks [N, P, H, W]."""
    if masks_o.shape != masks_c.shape:
        raise ValueError(f"mask shapes differ: {tuple(masks_o.shape)} vs {tuple(masks_c.shape)}")
    a = masks_o.bool().flatten(2)
    b = masks_c.bool().flatten(2)
    inter = (a & b).sum(-1).to(torch.float64)
    union = (a | b).sum(-1).to(torch.float64)
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
    return 100.0 * iou.mean(dim=-1)


def segmentation_consistency(masks_o: torch.Tensor, masks_c: torch.Tensor) -> torch.Tensor:
    """Functional twin: per-pair Seg-Cons from boolean masks [N, P, H, W]."""
    return _seg_cons_update(masks_o, masks_c)


class SegmentationConsistency(PairMetric):
    name: ClassVar[str] = "Seg-Cons"
    group: ClassVar[str] = PRESERVATION
    backbones: ClassVar[tuple[str, ...]] = ("sam",)
    decimals: ClassVar[int] = 2
    in_paper: ClassVar[bool] = True
    default: ClassVar[bool] = True
    tradeoff_rank: ClassVar[int | None] = 2
    value_range: ClassVar[tuple[float, float]] = (0.0, 100.0)  # 100 × a mean IoU
    higher_is_better = True

    @classmethod
    def options_record(cls, options) -> dict:
        return {**cls.record_options, "points_per_side": options.sam_points()}

    def update(self, masks_o: torch.Tensor, masks_c: torch.Tensor) -> None:
        self._append(_seg_cons_update(masks_o, masks_c))

    def feed(self, batch) -> None:
        for fo, fc in zip(*batch.features["sam"]):
            self.update(torch.from_numpy(SamBackbone.unpack(fo))[None], torch.from_numpy(SamBackbone.unpack(fc))[None])
