"""LPIPS agrees with the lpips package per pair (abs. < 1e-5) and refuses inputs outside [-1, 1]."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spf_bench import zoo
from spf_bench.core.errors import SpfError
from spf_bench.metrics import LearnedPerceptualSimilarity, lpips_distance, lpips_features
from spf_bench.metrics import preprocess
from spf_bench.metrics.backbones import make_backbone
from support.metric_images import portrait

# one intra-op thread (see the single_thread fixture in conftest)
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def lpips_net():
    return zoo.load("lpips", source="tiny")


@pytest.fixture(scope="module")
def pairs():
    originals = [np.asarray(portrait(i)) for i in range(4)]
    customized = [np.asarray(portrait(i + 10, shift=3)) for i in range(4)]
    return originals, customized


def _package_reference(net):
    """A fresh lpips.LPIPS(net='alex') given the same backbone (and head) weights."""
    import lpips

    reference = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    reference.load_state_dict(net.state_dict())
    return reference.eval()


def test_per_pair_agrees_with_lpips_package(lpips_net, pairs):
    import lpips

    originals, customized = pairs
    reference = _package_reference(lpips_net)
    with torch.no_grad():
        expected = torch.cat([reference(lpips.im2tensor(o), lpips.im2tensor(c)).reshape(1)
                              for o, c in zip(originals, customized)]).double()
    ours = lpips_distance(lpips_net, preprocess.lpips_input(originals), preprocess.lpips_input(customized))
    assert ours.shape == (4,)
    assert float((ours.double() - expected).abs().max()) < 1e-5
    assert float(expected.min()) > 0  # distinct images: a real comparison, not 0 == 0


def test_metric_class_through_backbone_matches_functional(lpips_net, pairs):
    originals, customized = pairs
    backbone = make_backbone("lpips", "tiny", network=lpips_net)
    feats_o, feats_c = backbone.encode(originals), backbone.encode(customized)
    metric = LearnedPerceptualSimilarity(lpips_net.lins)
    for fo, fc in zip(feats_o, feats_c):
        keys = sorted(fo)
        metric.update([torch.as_tensor(fo[k]) for k in keys], [torch.as_tensor(fc[k]) for k in keys])
    expected = lpips_distance(lpips_net, preprocess.lpips_input(originals), preprocess.lpips_input(customized)).double()
    assert torch.allclose(metric.per_pair(), expected, atol=1e-6)
    assert abs(float(metric.compute()) - float(expected.mean())) < 1e-6
    assert LearnedPerceptualSimilarity.higher_is_better is False


def test_identical_images_have_zero_distance(lpips_net, pairs):
    x = preprocess.lpips_input(pairs[0][:2])
    assert float(lpips_distance(lpips_net, x, x).abs().max()) < 1e-7


@pytest.mark.parametrize("scale", ["uint8 range", "slightly over 1"])
def test_input_outside_minus_one_one_is_refused(lpips_net, pairs, scale):
    x = torch.from_numpy(np.stack(pairs[0][:1])).permute(0, 3, 1, 2).float()
    if scale == "slightly over 1":
        x = x / 127.5 - 1
        x[0, 0, 0, 0] = 1.01
    with pytest.raises(SpfError, match=r"\[-1, 1\]"):
        lpips_features(lpips_net, x)
