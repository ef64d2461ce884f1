"""KID ↓: Kernel Inception Distance, the unbiased squared MMD between Inception pool features.

    KID = mean_{i!=j} k(o_i, o_j) + mean_{i!=j} k(c_i, c_j) - 2 mean_{i,j} k(o_i, c_j),
    k(x, y) = (x . y / d + 1)^3

FID fits a Gaussian per set, whose covariance is rank-deficient (and the value biased upwards)
while a set holds fewer images than the 2048 feature dimensions, as every tiny and synth run
does. KID has no such bias: its estimator is unbiased at any set size, so values on small sets
are comparable with values on large ones (Bińkowski et al., 2018).

The kernel is torchmetrics' ``poly_kernel`` (degree 3, gamma 1/d, coefficient 1, as
torchmetrics, torch-fidelity and clean-fid use). Unlike torchmetrics' class, which averages
the estimate over random subsets of ``subset_size`` images, the value here is the estimate on
the whole sets: the suite's sets are small enough for full kernel matrices, the value is then
deterministic, and the paired bootstrap resamples whole sets for the interval. With one subset
holding every image, torchmetrics gives the same number (tested).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.image.kid import poly_kernel
from torchmetrics.utilities.data import dim_zero_cat

from spf_bench.metrics.base import PRESERVATION, SetMetric

DEGREE, COEF = 3, 1.0


def _offdiagonal_mean(kernel: torch.Tensor) -> torch.Tensor:
    n = kernel.shape[0]
    return (kernel.sum() - kernel.diagonal().sum()) / (n * (n - 1))


def kernel_inception_distance(features_o: torch.Tensor, features_c: torch.Tensor) -> torch.Tensor:
    """Functional twin of :class:`KernelInceptionDistance` on two feature sets [N, D], in float64."""
    if features_o.shape[0] < 2 or features_c.shape[0] < 2:
        raise ValueError("KID needs at least two images in each set.")
    fo = features_o.to(torch.float64).reshape(features_o.shape[0], -1)
    fc = features_c.to(torch.float64).reshape(features_c.shape[0], -1)
    # torchmetrics' maximum_mean_discrepancy assumes equal set sizes; written out here so that
    # sets of different sizes (a class fed unevenly) get the unbiased estimate too.
    k_oo = poly_kernel(fo, fo, DEGREE, None, COEF)
    k_cc = poly_kernel(fc, fc, DEGREE, None, COEF)
    k_oc = poly_kernel(fo, fc, DEGREE, None, COEF)
    return _offdiagonal_mean(k_oo) + _offdiagonal_mean(k_cc) - 2 * k_oc.mean()


class KernelInceptionDistance(SetMetric, Metric):
    """KID between the originals (``real=True``) and the customized images, from features."""

    name: ClassVar[str] = "KID"
    group: ClassVar[str] = PRESERVATION
    backbones: ClassVar[tuple[str, ...]] = ("inception",)
    feature: ClassVar[str] = "pool"
    decimals: ClassVar[int] = 4
    # No lower bound: the unbiased estimate (off-diagonal means) of a squared MMD falls below 0
    # when the two sets are close, and so may its interval's lower end; it is kept, not clipped.
    default: ClassVar[bool] = True
    record_options: ClassVar[dict] = {"kernel": f"polynomial, degree {DEGREE}, gamma 1/d, coefficient {COEF:g}",
                                      "estimator": "unbiased MMD^2 on the whole sets (no subsets)"}
    higher_is_better = False
    is_differentiable = False
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("real_features", default=[], dist_reduce_fx="cat")
        self.add_state("fake_features", default=[], dist_reduce_fx="cat")

    @classmethod
    def set_value(cls, features_o: torch.Tensor, features_c: torch.Tensor, warn: bool = True) -> torch.Tensor:
        return kernel_inception_distance(features_o, features_c)

    @classmethod
    def resampled_values(cls, features_o: torch.Tensor, features_c: torch.Tensor, indices: torch.Tensor) -> np.ndarray:
        # A resampled set's kernel matrices are rows and columns of the full sets' ones, so
        # the kernels are computed once instead of once per resample (100 matrix products of
        # 5,000 x 2,048 features would take hours on a CPU).
        fo = features_o.to(torch.float64)
        fc = features_c.to(torch.float64)
        k_oo = poly_kernel(fo, fo, DEGREE, None, COEF)
        k_cc = poly_kernel(fc, fc, DEGREE, None, COEF)
        k_oc = poly_kernel(fo, fc, DEGREE, None, COEF)
        values = []
        for row in indices:
            pick = (row[:, None], row[None, :])
            values.append(float(_offdiagonal_mean(k_oo[pick]) + _offdiagonal_mean(k_cc[pick]) - 2 * k_oc[pick].mean()))
        return np.array(values)

    def update(self, features: torch.Tensor, real: bool) -> None:
        (self.real_features if real else self.fake_features).append(features.detach().to(torch.float64))

    def compute(self) -> torch.Tensor:
        if not self.real_features or not self.fake_features:
            raise ValueError("KID needs at least two images in each set.")
        return kernel_inception_distance(dim_zero_cat(self.real_features), dim_zero_cat(self.fake_features))
