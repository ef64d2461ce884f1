"""FID: Fréchet distance between Gaussian fits of Inception-v3 pool features of two sets.

    FID = ||mu_o - mu_c||^2 + tr(S_o) + tr(S_c) - 2 tr((S_o^1/2 S_c S_o^1/2)^1/2)

Statistics are accumulated in float64 (running sum and sum of outer products, as torchmetrics
does) because float32 sums of 2048-d outer products lose the digits FID differences live in.
The trace of the matrix square root is taken through symmetric eigen-decompositions
(``eigh``) rather than ``scipy.linalg.sqrtm``: S_o^1/2 S_c S_o^1/2 is symmetric positive
semi-definite, so its eigenvalues are real and non-negative up to rounding, which is clamped;
``sqrtm`` has returned complex results for nearly singular covariances in some releases.
When both sets are smaller than the feature dimension, the same trace equals the nuclear
norm of A_o^T A_c (A = centred features / sqrt(n-1)), an exact and much cheaper route that
the set-resampling bootstrap uses.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import torch
from torchmetrics import Metric

from spf_bench.metrics.base import NON_NEGATIVE, PRESERVATION, SetMetric


class SmallSetWarning(UserWarning):
    """A set is too small for its covariance to be full rank: FID is biased and unstable."""


def _fid_update(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Float64 sum, sum of outer products and count of a batch of features [N, D]."""
    f = features.detach().to(torch.float64).reshape(features.shape[0], -1)
    return f.sum(dim=0), f.T @ f, f.shape[0]


def _mean_cov(total: torch.Tensor, outer: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    mean = total / n
    # Unbiased covariance (n - 1), as numpy.cov, torchmetrics, clean-fid and pytorch-fid use.
    cov = (outer - n * torch.outer(mean, mean)) / (n - 1)
    return mean, cov


def _psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def _trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    """tr((S1 S2)^1/2) via eigh of S1^1/2 S2 S1^1/2 (same eigenvalues as S1 S2)."""
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    vals = torch.linalg.eigvalsh((middle + middle.T) / 2)
    return vals.clamp(min=0).sqrt().sum()


def _fid_compute(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    diff = mu1 - mu2
    return diff.dot(diff) + sigma1.trace() + sigma2.trace() - 2 * _trace_sqrt_product(sigma1, sigma2)


def _fid_from_features_lowrank(feat1: torch.Tensor, feat2: torch.Tensor) -> torch.Tensor:
    """Exact FID for sets smaller than the dimension: tr((S1 S2)^1/2) = ||A1^T A2||_* ."""
    f1 = feat1.to(torch.float64)
    f2 = feat2.to(torch.float64)
    mu1, mu2 = f1.mean(0), f2.mean(0)
    a1 = (f1 - mu1) / (f1.shape[0] - 1) ** 0.5
    a2 = (f2 - mu2) / (f2.shape[0] - 1) ** 0.5
    diff = mu1 - mu2
    nuclear = torch.linalg.svdvals(a1 @ a2.T).sum()
    return diff.dot(diff) + (a1 * a1).sum() + (a2 * a2).sum() - 2 * nuclear


# Whether this run has said it yet: every method scores FID on sets of the same size, so
# the sentence would otherwise repeat per method (and per side) without news.
_small_set_warned = False


def reset_small_set_warning() -> None:
    """Start a new run: the next FID on a small set warns again (once)."""
    global _small_set_warned
    _small_set_warned = False


def warn_if_small(n_original: int, n_customized: int, dim: int) -> None:
    """Warn, once per run, that an FID on fewer images than feature dimensions is biased."""
    global _small_set_warned
    if min(n_original, n_customized) >= dim or _small_set_warned:
        return
    _small_set_warned = True
    warnings.warn(
        f"FID on {n_original} original and {n_customized} customized images with {dim}-d features: the "
        f"covariance is rank-deficient (fewer images than dimensions), so the value is biased and not "
        f"comparable with FIDs on other set sizes; on a set this small compare methods with KID "
        f"(the KID metric), which is unbiased at any size, or use at least {dim} images for a reportable "
        f"FID. (Said once per run.)", SmallSetWarning, stacklevel=3)


def frechet_distance(features_o: torch.Tensor, features_c: torch.Tensor, warn: bool = True) -> torch.Tensor:
    """Functional twin of :class:`FrechetInceptionDistance` on two feature sets [N, D]."""
    if features_o.shape[0] < 2 or features_c.shape[0] < 2:
        raise ValueError("FID needs at least two images in each set.")
    dim = features_o.shape[1]
    if warn:
        warn_if_small(features_o.shape[0], features_c.shape[0], dim)
    if max(features_o.shape[0], features_c.shape[0]) < dim:
        return _fid_from_features_lowrank(features_o, features_c)
    s1, o1, n1 = _fid_update(features_o)
    s2, o2, n2 = _fid_update(features_c)
    return _fid_compute(*_mean_cov(s1, o1, n1), *_mean_cov(s2, o2, n2))


class FrechetInceptionDistance(SetMetric, Metric):
    """FID between the originals (``real=True``) and the customized images, from features.

    Like torchmetrics' class it keeps float64 sums, not raw features, so memory is constant;
    unlike it, it takes features so the Inception pass is shared with the feature cache. The
    evaluator keeps the features instead (its bootstrap resamples them) and calls
    :meth:`set_value`, which takes the exact low-rank route on sets smaller than 2048.
    """

    name: ClassVar[str] = "FID"
    group: ClassVar[str] = PRESERVATION
    version: ClassVar[str] = "1"
    backbones: ClassVar[tuple[str, ...]] = ("inception",)
    feature: ClassVar[str] = "pool"
    recentre_interval: ClassVar[bool] = True
    value_range: ClassVar[tuple[float, float]] = NON_NEGATIVE  # a squared distance
    decimals: ClassVar[int] = 2
    in_paper: ClassVar[bool] = True
    default: ClassVar[bool] = True
    tradeoff_rank: ClassVar[int | None] = 5
    higher_is_better = False
    is_differentiable = False
    full_state_update = False

    @classmethod
    def set_value(cls, features_o: torch.Tensor, features_c: torch.Tensor, warn: bool = True) -> torch.Tensor:
        return frechet_distance(features_o, features_c, warn=warn)

    def __init__(self, num_features: int = 2048, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_features = num_features
        for side in ("real", "fake"):
            self.add_state(f"{side}_sum", torch.zeros(num_features, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", torch.zeros(num_features, num_features, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_n", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, features: torch.Tensor, real: bool) -> None:
        total, outer, n = _fid_update(features)
        side = "real" if real else "fake"
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + total)
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + outer)
        setattr(self, f"{side}_n", getattr(self, f"{side}_n") + n)

    def compute(self) -> torch.Tensor:
        n_real, n_fake = int(self.real_n), int(self.fake_n)
        if n_real < 2 or n_fake < 2:
            raise ValueError("FID needs at least two images in each set.")
        warn_if_small(n_real, n_fake, self.num_features)
        mu1, s1 = _mean_cov(self.real_sum, self.real_outer, n_real)
        mu2, s2 = _mean_cov(self.fake_sum, self.fake_outer, n_fake)
        return _fid_compute(mu1, s1, mu2, s2)
