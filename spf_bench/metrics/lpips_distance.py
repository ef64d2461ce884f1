"""LPIPS v0.1 (AlexNet): learned perceptual distance between original and customized image.

The network is the ``lpips`` package's ``LPIPS(net='alex')`` module. Its forward pass is split
here in two so that each image goes through AlexNet once: :func:`lpips_features` gives an
image's unit-normalised activations of the five AlexNet stages, and :func:`_lpips_update`
turns two images' activations into the distance with the package's learned linear heads:

    d(x0, x1) = sum_l mean_hw( w_l . (f_l(x0) - f_l(x1))^2 )

Inputs must lie in [-1, 1] (the package's convention; passing [0, 1] or [0, 255] images
silently gives wrong distances), which :func:`check_range` enforces.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import torch

from spf_bench.core.errors import SpfError
from spf_bench.metrics.base import NON_NEGATIVE, PRESERVATION, PairMetric

RANGE_TOLERANCE = 1e-4


def check_range(images: torch.Tensor) -> None:
    low, high = float(images.min()), float(images.max())
    if low < -1 - RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise SpfError(f"LPIPS inputs must lie in [-1, 1] but range over [{low:.3g}, {high:.3g}]; convert uint8 images with x / 127.5 - 1.")


def _unit_normalise(feature: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    # Same normalisation as the package (eps added to the norm), so distances agree to 1e-6.
    norm = torch.sqrt(torch.sum(feature ** 2, dim=1, keepdim=True))
    return feature / (norm + eps)


@torch.no_grad()
def lpips_features(net: torch.nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """Unit-normalised AlexNet activations of images [N, 3, H, W] in [-1, 1]."""
    check_range(images)
    stages = net.net.forward(net.scaling_layer(images))
    return [_unit_normalise(stage) for stage in stages]


def _lpips_update(feats_o: Sequence[torch.Tensor], feats_c: Sequence[torch.Tensor], lins: Sequence[torch.nn.Module]) -> torch.Tensor:
    """Per-pair LPIPS distances [N] from the two images' stage activations."""
    total = None
    for f0, f1, lin in zip(feats_o, feats_c, lins, strict=True):
        layer = lin((f0 - f1) ** 2).mean(dim=(2, 3)).reshape(-1)
        total = layer if total is None else total + layer
    return total


@torch.no_grad()
def lpips_distance(net: torch.nn.Module, originals: torch.Tensor, customized: torch.Tensor) -> torch.Tensor:
    """Functional twin: per-pair LPIPS of images [N, 3, H, W] in [-1, 1]."""
    return _lpips_update(lpips_features(net, originals), lpips_features(net, customized), net.lins)


class LearnedPerceptualSimilarity(PairMetric):
    """LPIPS ↓ over pairs; ``update`` takes the activations from :func:`lpips_features`."""

    name: ClassVar[str] = "LPIPS"
    group: ClassVar[str] = PRESERVATION
    backbones: ClassVar[tuple[str, ...]] = ("lpips",)
    in_paper: ClassVar[bool] = True
    default: ClassVar[bool] = True
    tradeoff_rank: ClassVar[int | None] = 4
    # A weighted sum of squared feature differences; the linear weights are non-negative once trained.
    value_range: ClassVar[tuple[float, float]] = NON_NEGATIVE
    higher_is_better = False

    @classmethod
    def build(cls, options, backbones) -> LearnedPerceptualSimilarity:
        return cls(backbones["lpips"].network.lins)

    def __init__(self, lins: Sequence[torch.nn.Module], **kwargs) -> None:
        super().__init__(**kwargs)
        # The heads are frozen weights of the backbone, not state: kept out of state_dict sync.
        self._lins = list(lins)

    @torch.no_grad()
    def update(self, feats_o: Sequence[torch.Tensor], feats_c: Sequence[torch.Tensor]) -> None:
        self._append(_lpips_update(feats_o, feats_c, self._lins))

    def feed(self, batch) -> None:
        for fo, fc in zip(*batch.features["lpips"]):
            stages = sorted(fo)
            self.update([torch.as_tensor(fo[k]) for k in stages], [torch.as_tensor(fc[k]) for k in stages])
