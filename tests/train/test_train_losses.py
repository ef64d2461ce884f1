"""The losses and the SFCM as pure functions, on small hand-made tensors with known values."""

from __future__ import annotations

import math

import pytest
import torch

from spf_train.losses import (
    attention_alignment_loss,
    difference_vector_loss,
    diffusion_loss,
    direct_clip_loss,
    hidden_alignment_loss,
    masked_alignment_loss,
)
from spf_train.sfcm import (
    exclusion_map,
    minmax_normalise,
    relevance_weights,
    resize_map_to_tokens,
    sfcm_from_maps,
    soft_map,
    split_phrases,
)

pytestmark = pytest.mark.usefixtures("single_thread")


def test_diffusion_loss_is_the_mean_squared_error():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = torch.tensor([[1.0, 0.0], [0.0, 4.0]])
    assert diffusion_loss(pred, target).item() == pytest.approx((4 + 9) / 4)


def test_alignment_loss_known_value_and_mask_weighting():
    res = [torch.tensor([[[1.0], [3.0]]])]  # (B=1, N=2, C=1)
    ref = [torch.tensor([[[0.0], [1.0]]])]
    # M = 0: plain mean of squared differences (1 + 4) / 2
    assert masked_alignment_loss(res, ref, [torch.zeros(1, 2)]).item() == pytest.approx(2.5)
    # M = [1, 0.5]: weights (1 - M) = [0, 0.5] -> (0 * 1 + 0.5 * 4) / 2
    assert masked_alignment_loss(res, ref, [torch.tensor([[1.0, 0.5]])]).item() == pytest.approx(1.0)
    # sums over layers
    assert masked_alignment_loss(res * 2, ref * 2, [torch.zeros(1, 2)] * 2).item() == pytest.approx(5.0)


def test_alignment_losses_vanish_with_m_one_whatever_the_paths():
    torch.manual_seed(0)
    a_res, a_ref = [torch.randn(2, 4, 16, 8)], [torch.randn(2, 4, 16, 8)]
    h_res, h_ref = [torch.randn(2, 16, 32)], [torch.randn(2, 16, 32)]
    ones = [torch.ones(2, 16)]
    assert attention_alignment_loss(a_res, a_ref, ones).item() == 0.0
    assert hidden_alignment_loss(h_res, h_ref, ones).item() == 0.0
    assert attention_alignment_loss(a_res, a_ref, [torch.zeros(2, 16)]).item() > 0


def test_alignment_loss_per_head_features_weight_positions():
    res = torch.zeros(1, 2, 2, 1)  # (B, heads, N, d)
    ref = torch.ones(1, 2, 2, 1)
    mask = torch.tensor([[1.0, 0.0]])  # keep only position 1 in the loss
    assert attention_alignment_loss([res], [ref], [mask]).item() == pytest.approx(0.5)


def test_difference_vector_loss_zero_when_prediction_equals_ground_truth_and_differs_from_clip_loss():
    image = torch.tensor([[1.0, 0.0, 0.0]])
    text = torch.tensor([[0.0, 1.0, 0.0]])
    assert difference_vector_loss(image, image.clone(), text).item() == pytest.approx(0.0, abs=1e-6)
    # the direct loss compares image with text: orthogonal unit vectors -> 1 - 0 = 1
    assert direct_clip_loss(image, text).item() == pytest.approx(1.0)
    # a prediction rotated away from the ground truth: d_pred = (0,-1,1) - ..., known cosine
    pred = torch.tensor([[0.0, 0.0, 1.0]])
    d_pred, d_gt = torch.tensor([0.0, -1.0, 1.0]), torch.tensor([1.0, -1.0, 0.0])
    expected = 1 - float(d_pred @ d_gt) / (d_pred.norm() * d_gt.norm()).item()
    assert difference_vector_loss(pred, image, text).item() == pytest.approx(expected)  # 0.5
    assert direct_clip_loss(pred, text).item() == pytest.approx(1.0)
    assert expected != pytest.approx(1.0)


def test_difference_vector_loss_is_scale_invariant_in_embeddings():
    image, gt, text = torch.tensor([[2.0, 1.0]]), torch.tensor([[1.0, 3.0]]), torch.tensor([[0.5, 0.5]])
    assert difference_vector_loss(10 * image, gt, 3 * text).item() == pytest.approx(difference_vector_loss(image, gt, text).item())


def test_minmax_and_soft_map():
    maps = torch.tensor([[[1.0, 3.0], [5.0, 3.0]]])
    assert torch.allclose(minmax_normalise(maps), torch.tensor([[[0.0, 0.5], [1.0, 0.5]]]))
    eps_res = torch.zeros(1, 4, 2, 2)
    eps_ref = torch.zeros(1, 4, 2, 2)
    eps_ref[0, :, 1, 1] = 2.0
    eps_ref[0, 0, 0, 0] = 4.0  # channel mean 1.0
    out = soft_map(eps_res, eps_ref)
    assert torch.allclose(out, torch.tensor([[[0.5, 0.0], [0.0, 1.0]]]))


def test_relevance_weights_known_values():
    phrases = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]])
    target = torch.tensor([1.0, 0.0])
    w = relevance_weights(phrases, target)
    assert torch.allclose(w, torch.tensor([0.0, 1.0, 1.0, 1 - 1 / math.sqrt(2)]), atol=1e-6)


def test_sfcm_keeps_a_relevant_phrase_region_and_removes_an_unrelated_one():
    h = w = 8
    soft = torch.ones(h, w)
    soft[0, 0] = 0.0  # not constant, so normalisation keeps the ones at 1
    left, right = torch.zeros(h, w), torch.zeros(h, w)
    left[:, : w // 2] = 1.0
    right[:, w // 2:] = 1.0
    # phrase 0 ("glasses-like", relevant: s = 0.9), phrase 1 (unrelated: s = -0.2)
    weights = 1 - torch.tensor([0.9, -0.2]).clamp_min(0)
    m = sfcm_from_maps(soft, torch.stack([left, right]), weights)
    assert m.shape == (h, w)
    assert float(m.min()) >= 0.0 and float(m.max()) <= 1.0
    # raw M: left 1 - 0.1/1.1 = 10/11, right 1 - 1/1.1 = 1/11; normalised by the max 10/11
    assert float(m[1:, : w // 2].mean()) == pytest.approx(1.0, abs=1e-5)  # relevant phrase's region kept
    assert float(m[:, w // 2:].mean()) == pytest.approx(0.1, abs=1e-5)  # unrelated phrase's region removed
    # exclusion map by hand: X = (0.1 L + 1.0 R) / 1.1
    assert torch.allclose(exclusion_map(torch.stack([left, right]), weights), (0.1 * left + 1.0 * right) / 1.1)


def test_resize_map_to_layer_tokens():
    m = torch.arange(16.0).view(1, 4, 4)
    assert resize_map_to_tokens(m, 16).shape == (1, 16)
    assert torch.allclose(resize_map_to_tokens(m, 4, mode="area"), torch.tensor([[2.5, 4.5, 10.5, 12.5]]))


def test_split_phrases_on_commas_and_and():
    caption = "a photo of a young woman, long brown hair and blue eyes, in a park"
    spans = [caption[a:b] for a, b in split_phrases(caption)]
    assert spans == ["a photo of a young woman", "long brown hair", "blue eyes", "in a park"]
    assert [caption[a:b] for a, b in split_phrases(caption, "comma")][1] == "long brown hair and blue eyes"
    beach = "a sandy beach"
    assert [beach[a:b] for a, b in split_phrases(beach)] == [beach]  # "and" inside a word stays
