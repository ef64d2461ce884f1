"""MPS ↑: multi-dimensional preference score (overall condition) of the customized image.

The score is the MPS backbone's preference logit for (image, full caption) under the
"overall" condition, from local files only; the metric collects it per pair.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from spf_bench.metrics.base import OVERALL, PairMetric
from spf_bench.triples.captions import full_caption


def _mps_update(scores: torch.Tensor) -> torch.Tensor:
    return scores.detach().to(torch.float64).reshape(-1)


def mps_score(scores: torch.Tensor) -> torch.Tensor:
    """Functional twin: per-pair MPS values from the backbone's scores."""
    return _mps_update(scores)


class MpsScore(PairMetric):
    name: ClassVar[str] = "MPS"
    group: ClassVar[str] = OVERALL
    backbones: ClassVar[tuple[str, ...]] = ("mps",)
    in_paper: ClassVar[bool] = True
    default: ClassVar[bool] = True
    record_options: ClassVar[dict] = {"caption": "full", "condition": "overall"}
    higher_is_better = True

    def update(self, scores: torch.Tensor) -> None:
        self._append(_mps_update(scores))

    def feed(self, batch) -> None:
        captions = [full_caption(p.base_caption, p.target_caption) for p in batch.pairs]
        self.update(torch.from_numpy(batch.call("mps", "score", batch.customized, captions)))
