"""KID and FD-CLIP: agreement with torchmetrics' KID on identical features, the unbiasedness
that makes KID the answer to FID's small-set warning, the bootstrap shortcut, and the
evaluator reading the right backbone's features for both."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torchmetrics.image.kid import KernelInceptionDistance as TorchmetricsKID

from spf_bench.evaluation.evaluator import evaluate_run
from spf_bench.evaluation.features_cache import FeatureCache
from spf_bench.metrics import (
    FrechetClipDistance,
    KernelInceptionDistance,
    SmallSetWarning,
    frechet_distance,
    kernel_inception_distance,
)
from spf_bench.metrics.backbones import make_backbone
from spf_bench.metrics.fid import reset_small_set_warning
from spf_bench.core.images import read_image
from support.metric_images import make_method_run, make_triple_set

pytestmark = pytest.mark.usefixtures("single_thread")


def _sets(n: int, dim: int, shift: float = 0.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return (torch.from_numpy(rng.normal(0, 1, (n, dim))),
            torch.from_numpy(rng.normal(shift, 1, (n, dim))))


@pytest.mark.parametrize("n,dim,shift", [(40, 16, 0.0), (40, 16, 0.5), (12, 64, 1.0)])
def test_kid_agrees_with_torchmetrics_on_identical_features(n, dim, shift):
    real, fake = _sets(n, dim, shift)
    # One subset holding every image: torchmetrics' estimate is then the whole-set one.
    reference = TorchmetricsKID(feature=torch.nn.Identity(), subsets=1, subset_size=n)
    reference.update(real, real=True)
    reference.update(fake, real=False)
    expected = float(reference.compute()[0])

    ours = KernelInceptionDistance()
    for chunk in torch.split(real, 7):
        ours.update(chunk, real=True)
    for chunk in torch.split(fake, 5):
        ours.update(chunk, real=False)
    assert float(ours.compute()) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert float(kernel_inception_distance(real, fake)) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert float(KernelInceptionDistance.set_value(real, fake)) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    if shift:
        assert expected > 0


def test_kid_on_sets_of_different_sizes_is_the_unbiased_estimate():
    real, _ = _sets(9, 5, seed=1)
    _, fake = _sets(6, 5, shift=0.3, seed=2)

    def k(x, y):
        return (float(x @ y) / 5 + 1) ** 3

    m, n = len(real), len(fake)
    xx = sum(k(real[i], real[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(fake[i], fake[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(real[i], fake[j]) for i in range(m) for j in range(n)) / (m * n)
    assert float(kernel_inception_distance(real, fake)) == pytest.approx(xx + yy - 2 * xy, rel=1e-9)


def test_kid_is_unbiased_on_small_sets_where_fid_is_not():
    # Same distribution, 10 images of 64-d features: FID's mean over draws sits far above 0
    # (and warns), KID's mean is 0 within its sampling error.
    kids, fids = [], []
    reset_small_set_warning()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for seed in range(60):
            real, fake = _sets(10, 64, seed=seed)
            kids.append(float(kernel_inception_distance(real, fake)))
            fids.append(float(frechet_distance(real, fake)))
    assert any(issubclass(w.category, SmallSetWarning) and "KID" in str(w.message) for w in caught)
    kids = np.array(kids)
    assert abs(kids.mean()) < 3 * kids.std(ddof=1) / np.sqrt(len(kids))
    assert np.mean(fids) > 10 * abs(kids.mean()) and np.mean(fids) > 1.0


def test_kid_bootstrap_shortcut_equals_recomputing_each_resample():
    real, fake = _sets(15, 8, shift=0.2, seed=3)
    indices = torch.from_numpy(np.random.default_rng(0).integers(0, 15, size=(6, 15)))
    fast = KernelInceptionDistance.resampled_values(real, fake, indices)
    slow = [float(kernel_inception_distance(real[row], fake[row])) for row in indices]
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-12)


def test_evaluator_scores_kid_and_fd_clip_from_their_backbones(tmp_path, tiny_networks):
    triples = make_triple_set(tmp_path / "triples", n=5, size=64)
    run = make_method_run(tmp_path / "runs", triples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSetWarning)
        result = evaluate_run(triples, run, metrics=("KID", "FD-CLIP"), progress=False, write=False, n_bootstrap=20,
                              fid_bootstrap=10, cache=FeatureCache(tmp_path / "cache"), networks=tiny_networks)
    pairs = sorted((triples / "originals").glob("*.png"))
    originals = [read_image(p, p.stem)[0] for p in pairs]
    customized = [read_image(run / "images" / p.name, p.stem)[0] for p in pairs]
    features = {}
    for backbone, key in (("inception", "pool"), ("clip", "image")):
        net = make_backbone(backbone, "tiny", network=tiny_networks.get(backbone))
        features[backbone] = [torch.from_numpy(np.stack([f[key] for f in net.encode(images)]))
                              for images in (originals, customized)]
    metrics = result.summary["metrics"]
    assert metrics["KID"]["value"] == pytest.approx(float(kernel_inception_distance(*features["inception"])), rel=1e-6)
    assert metrics["FD-CLIP"]["value"] == pytest.approx(
        float(frechet_distance(*features["clip"], warn=False)), rel=1e-6)
    assert metrics["FD-CLIP"]["record"]["backbone"] == "clip" and metrics["KID"]["record"]["backbone"] == "inception"
    for name in ("KID", "FD-CLIP"):
        entry = metrics[name]
        assert entry["n"] == 5 and entry["higher_is_better"] is False
        assert entry["ci_low"] <= entry["ci_high"]
    assert "KID" not in result.per_pair_rows[0] and "FD-CLIP" not in result.per_pair_rows[0]  # values of the whole set
    assert FrechetClipDistance.per_pair is False and FrechetClipDistance.backbones == ("clip",)
