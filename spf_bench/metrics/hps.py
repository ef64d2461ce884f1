"""HPSv2 ↑: HPS v2.1 human-preference score of the customized image for its full caption.

The score is the backbone's own: the cosine of its CLIP-H image and caption embeddings (not
scaled by 100, as hpsv2's own scorer gives it), computed by the HPS bundle from local files
only; the metric collects it per pair.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from spf_bench.metrics.base import OVERALL, PairMetric
from spf_bench.triples.captions import full_caption


def _hps_update(scores: torch.Tensor) -> torch.Tensor:
    return scores.detach().to(torch.float64).reshape(-1)


def hps_v2_score(scores: torch.Tensor) -> torch.Tensor:
    """Functional twin: per-pair HPSv2 values from the backbone's scores."""
    return _hps_update(scores)


class HpsV2Score(PairMetric):
    name: ClassVar[str] = "HPSv2"
    group: ClassVar[str] = OVERALL
    backbones: ClassVar[tuple[str, ...]] = ("hps",)
    in_paper: ClassVar[bool] = True
    default: ClassVar[bool] = True
    record_options: ClassVar[dict] = {"caption": "full"}
    higher_is_better = True

    def update(self, scores: torch.Tensor) -> None:
        self._append(_hps_update(scores))

    def feed(self, batch) -> None:
        captions = [full_caption(p.base_caption, p.target_caption) for p in batch.pairs]
        self.update(torch.from_numpy(batch.call("hps", "score", batch.customized, captions)))
