"""MPS ↑: multi-dimensional preference score (overall condition) of the customized image.

The score is the MPS backbone's preference logit for (image, full caption) under the
"overall" condition, from local files only; the metric collects it per pair.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from spf_bench.metrics.base import OVERALL, PairMetric


def _mps_update(scores: torch.Tensor) -> torch.Tensor:
    return scores.detach().to(torch.float64).reshape(-1)


def mps_score(scores: torch.Tensor) -> torch.Tensor:
    """Functional twin: per-pair MPS values from the backbone's scores."""
    return _mps_update(scores)


class MpsScore(PairMetric):
    name: ClassVar[str] = "MPS"
    group: ClassVar[str] = OVERALL
    backbones: ClassVar[tuple[str, ...]] = ("mps",)
    higher_is_better = True

    def update(self, scores: torch.Tensor) -> None:
        self._append(_mps_update(scores))
