"""FID agrees with torchmetrics, clean-fid and pytorch-fid on the same features (rel. < 1e-4)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from spf_bench.metrics import FrechetInceptionDistance, SmallSetWarning, frechet_distance
from spf_bench.metrics.fid import reset_small_set_warning
from spf_bench.metrics.fid import _fid_compute, _fid_from_features_lowrank, _fid_update, _mean_cov

# one intra-op thread (see the single_thread fixture in conftest)
pytestmark = pytest.mark.usefixtures("single_thread")

REL = 1e-4


def _features(n: int, dim: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(dim, dim, generator=g, dtype=torch.float64) / dim ** 0.5
    return (torch.randn(n, dim, generator=g, dtype=torch.float64) @ mixing + shift)


def _nearly_singular(n: int, dim: int, seed: int) -> torch.Tensor:
    """Features whose last coordinates are the first ones plus 1e-6 noise: covariance eigenvalues ~1e-12."""
    f = _features(n, dim, seed)
    g = torch.Generator().manual_seed(seed + 1)
    f[:, dim // 2:] = f[:, : dim - dim // 2] + 1e-6 * torch.randn(n, dim - dim // 2, generator=g, dtype=torch.float64)
    return f


def _stats(f: torch.Tensor):
    x = f.numpy()
    return x.mean(0), np.cov(x, rowvar=False)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


CASES = {
    "full rank": lambda: (_features(300, 32, 0), _features(280, 32, 1, shift=0.3)),
    "nearly singular": lambda: (_nearly_singular(300, 32, 2), _nearly_singular(300, 32, 3) + 0.2),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_agrees_with_clean_fid_and_pytorch_fid(case):
    from cleanfid.fid import frechet_distance as clean_fid_distance
    from pytorch_fid.fid_score import calculate_frechet_distance

    fo, fc = CASES[case]()
    ours = float(frechet_distance(fo, fc, warn=False))
    (mu1, s1), (mu2, s2) = _stats(fo), _stats(fc)
    clean = float(clean_fid_distance(mu1, s1, mu2, s2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pytorch-fid warns when it has to add an offset
        reference = float(calculate_frechet_distance(mu1, s1, mu2, s2))
    assert ours > 0
    assert _rel(ours, clean) < REL, (ours, clean)
    assert _rel(ours, reference) < REL, (ours, reference)


class _Projection(torch.nn.Module):
    """A fixed feature extractor for torchmetrics: uint8 images -> 24-d features."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(7)
        self.weight = torch.nn.Parameter(torch.randn(3 * 8 * 8, 24, generator=g), requires_grad=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        small = torch.nn.functional.adaptive_avg_pool2d(images.float() / 255, 8)
        return torch.tanh(small.flatten(1) @ self.weight * 0.5)


@pytest.mark.parametrize("case", ["full rank", "nearly singular"])
def test_agrees_with_torchmetrics_fid(case):
    from torchmetrics.image.fid import FrechetInceptionDistance as TorchmetricsFID

    g = torch.Generator().manual_seed(11)
    real = torch.randint(0, 256, (60, 3, 16, 16), generator=g, dtype=torch.uint8)
    fake = (real.int() + torch.randint(-40, 41, real.shape, generator=g)).clamp(0, 255).to(torch.uint8)
    extractor = _Projection()
    if case == "nearly singular":
        # Repeat the same feature in two coordinates, up to float rounding.
        base = extractor.forward
        extractor.forward = lambda x: torch.cat([base(x), base(x)[:, :4] * (1 + 1e-7)], dim=1)
    reference = TorchmetricsFID(feature=extractor)
    reference.update(real, real=True)
    reference.update(fake, real=False)
    expected = float(reference.compute())

    ours = FrechetInceptionDistance(num_features=extractor(real[:1]).shape[1])
    for chunk in range(0, 60, 25):  # accumulation across batches must not matter
        ours.update(extractor(real[chunk:chunk + 25]), real=True)
        ours.update(extractor(fake[chunk:chunk + 25]), real=False)
    value = float(ours.compute())
    functional = float(frechet_distance(extractor(real), extractor(fake), warn=False))
    assert _rel(value, expected) < REL, (value, expected)
    assert _rel(functional, expected) < REL, (functional, expected)


def test_low_rank_route_equals_eigen_route():
    fo, fc = _features(20, 64, 4), _features(25, 64, 5, shift=0.1)
    (s1, o1, n1), (s2, o2, n2) = _fid_update(fo), _fid_update(fc)
    dense = float(_fid_compute(*_mean_cov(s1, o1, n1), *_mean_cov(s2, o2, n2)))
    low = float(_fid_from_features_lowrank(fo, fc))
    # The dense route sums square roots of ~1e-15 rounding eigenvalues of the rank-deficient
    # product; the low-rank route has none, so agreement is limited by that noise.
    assert _rel(low, dense) < 1e-6


def test_states_are_float64_and_identical_sets_give_zero():
    f = _features(50, 16, 6).float()
    metric = FrechetInceptionDistance(num_features=16)
    metric.update(f, real=True)
    metric.update(f, real=False)
    assert metric.real_outer.dtype == torch.float64
    assert abs(float(metric.compute())) < 1e-6
    assert FrechetInceptionDistance.higher_is_better is False


def test_small_set_warns_and_large_set_does_not():
    reset_small_set_warning()
    with pytest.warns(SmallSetWarning, match="rank-deficient"):
        frechet_distance(_features(10, 32, 7), _features(10, 32, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallSetWarning)
        frechet_distance(_features(40, 32, 7), _features(40, 32, 8))


def test_fid_of_one_image_is_refused():
    with pytest.raises(ValueError, match="at least two"):
        frechet_distance(_features(1, 8, 0), _features(5, 8, 1))


def test_small_set_warning_is_said_once_per_run_with_the_sizes_and_kid():
    reset_small_set_warning()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for seed in range(3):  # three methods scored in one run: originals and customized each time
            frechet_distance(_features(10, 32, seed), _features(9, 32, seed + 10))
    said = [w for w in caught if issubclass(w.category, SmallSetWarning)]
    assert len(said) == 1
    text = str(said[0].message)
    assert "10 original and 9 customized images" in text and "KID" in text and "at least 32 images" in text
    reset_small_set_warning()  # the next run says it again
    with pytest.warns(SmallSetWarning, match="KID"):
        frechet_distance(_features(10, 32, 0), _features(10, 32, 1))
