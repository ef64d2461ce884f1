"""FD-CLIP ↓: the Fréchet distance between Gaussian fits of CLIP image embeddings of two sets.

FID's formula on the suite's CLIP backbone's image embeddings (``encode_image``, not
normalised), as clean-fid's CLIP option computes it on CLIP features (Kynkäänniemi et al.,
2023, who found CLIP features track human judgement better than Inception's). It matters under
the ``synth`` weights: there the CLIP network is the synthetic world's own, trained on its
portraits, while the Inception network FID reads is the untrained tiny one, so FD-CLIP is the
set-level preservation metric whose number means something. The math is :mod:`.fid`'s.
"""

from __future__ import annotations

from typing import ClassVar

from spf_bench.metrics.fid import FrechetInceptionDistance, frechet_distance


class FrechetClipDistance(FrechetInceptionDistance):
    """FD-CLIP between the originals (``real=True``) and the customized images' CLIP embeddings."""

    name: ClassVar[str] = "FD-CLIP"
    backbones: ClassVar[tuple[str, ...]] = ("clip",)
    feature: ClassVar[str] = "image"
    in_paper: ClassVar[bool] = False
    default: ClassVar[bool] = True
    tradeoff_rank: ClassVar[int | None] = None
    record_options: ClassVar[dict] = {"features": "CLIP encode_image embeddings, not normalised"}

    @classmethod
    def set_value(cls, features_o, features_c, warn: bool = True):
        # FID's small-set warning (once per run) already points to KID; it would name FID here.
        return frechet_distance(features_o, features_c, warn=False)

    def __init__(self, num_features: int = 768, **kwargs) -> None:
        super().__init__(num_features=num_features, **kwargs)
