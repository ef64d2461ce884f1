"""The shape every per-pair metric of the suite shares.

A metric is a torchmetrics :class:`~torchmetrics.Metric`: its states are declared with
``add_state`` (so distributed runs gather them for free), it overrides only ``update`` and
``compute``, and carries ``higher_is_better``. The math lives once in private
``_<metric>_update`` helpers of its module, called by both the class and its functional twin.

Metrics here take *features* (embeddings, masks, scores), never images: the evaluator runs
every backbone once per batch and hands the same features to all metrics that need them.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

PRESERVATION = "preservation"
RESPONSIVENESS = "responsiveness"
OVERALL = "overall"


class PairMetric(Metric):
    """A metric with one value per (original, customized) pair; its aggregate is their mean.

    A pair whose value cannot be computed (ID without a face) holds NaN and is left out of the
    mean; ``count`` says how many pairs the mean covers.
    """

    name: ClassVar[str]
    group: ClassVar[str]
    version: ClassVar[str] = "1"
    backbones: ClassVar[tuple[str, ...]] = ()
    is_differentiable = False
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def _append(self, values: torch.Tensor) -> None:
        self.values.append(values.detach().to(torch.float64).reshape(-1))

    def per_pair(self) -> torch.Tensor:
        """Every pair's value in update order (NaN where a pair was left out)."""
        if not self.values:
            return torch.zeros(0, dtype=torch.float64)
        return dim_zero_cat(self.values)

    def count(self) -> int:
        return int(torch.isfinite(self.per_pair()).sum())

    def compute(self) -> torch.Tensor:
        values = self.per_pair()
        kept = values[torch.isfinite(values)]
        if kept.numel() == 0:
            return torch.tensor(float("nan"), dtype=torch.float64)
        return kept.mean()


def cosine_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity in float64; a row that is NaN (no feature) gives NaN.

    Computed in float64 because embeddings are usually float16/32 and the comparison with
    reference implementations is at 1e-5; normalising first keeps a zero vector from
    producing a silent 0 (it gives NaN, which is reported as a missing value).
    """
    a = a.to(torch.float64)
    b = b.to(torch.float64)
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    return (a * b).sum(dim=-1)
