"""HPSv2 ↑: HPS v2.1 human-preference score of the customized image for its full caption.

The score is the backbone's own (100 × cosine of its CLIP-H image and caption embeddings,
computed by the HPS bundle from local files only); the metric collects it per pair.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from spf_bench.metrics.base import OVERALL, PairMetric


def _hps_update(scores: torch.Tensor) -> torch.Tensor:
    return scores.detach().to(torch.float64).reshape(-1)


def hps_v2_score(scores: torch.Tensor) -> torch.Tensor:
    """Functional twin: per-pair HPSv2 values from the backbone's scores."""
    return _hps_update(scores)


class HpsV2Score(PairMetric):
    name: ClassVar[str] = "HPSv2"
    group: ClassVar[str] = OVERALL
    backbones: ClassVar[tuple[str, ...]] = ("hps",)
    higher_is_better = True

    def update(self, scores: torch.Tensor) -> None:
        self._append(_hps_update(scores))
