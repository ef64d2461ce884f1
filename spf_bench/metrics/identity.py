"""ID: cosine similarity of ArcFace embeddings of the largest face in original and customized.

The detector/aligner/recogniser run in the face backbone; here each image arrives as an
embedding row, or a NaN row when no face was found. A pair missing a face in either image is
left out of the mean (NaN value) and counted in the face-found rate, reported beside it.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from spf_bench.metrics.base import COSINE, PRESERVATION, PairMetric, cosine_rows


def _identity_update(emb_o: torch.Tensor, emb_c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    found = torch.isfinite(emb_o).all(dim=-1) & torch.isfinite(emb_c).all(dim=-1)
    values = cosine_rows(emb_o, emb_c)
    values[~found] = float("nan")
    return values, found


def identity_similarity(emb_o: torch.Tensor, emb_c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Functional twin: per-pair ID (NaN without a face in both) and the face-found mask."""
    return _identity_update(emb_o, emb_c)


class IdentitySimilarity(PairMetric):
    name: ClassVar[str] = "ID"
    group: ClassVar[str] = PRESERVATION
    backbones: ClassVar[tuple[str, ...]] = ("face",)
    in_paper: ClassVar[bool] = True
    default: ClassVar[bool] = True
    tradeoff_rank: ClassVar[int | None] = 3
    value_range: ClassVar[tuple[float, float]] = COSINE
    higher_is_better = True

    def update(self, emb_o: torch.Tensor, emb_c: torch.Tensor) -> None:
        values, _ = _identity_update(emb_o, emb_c)
        self._append(values)

    def feed(self, batch) -> None:
        self.update(*batch.stacked("face", "embedding"))

    def face_found_rate(self) -> float:
        values = self.per_pair()
        return float(torch.isfinite(values).to(torch.float64).mean()) if values.numel() else float("nan")
