"""CLIP-I / CLIP-T agree with a direct open_clip computation and with torchmetrics' CLIPScore / 100."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from PIL import Image

from spf_bench import zoo
from spf_bench.metrics import (
    ClipImageSimilarity,
    ClipTextAlignment,
    clip_image_similarity,
    clip_text_alignment,
)
from spf_bench.metrics.backbones import make_backbone
from spf_bench.metrics.clipscore_bridge import clipscore_model_and_processor
from support.metric_images import portrait

# one intra-op thread (see the single_thread fixture in conftest)
pytestmark = pytest.mark.usefixtures("single_thread")

CAPTIONS = ["wearing round glasses", "with curly red hair", "smiling broadly"]


@pytest.fixture(scope="module")
def bundle():
    return zoo.load("clip", source="tiny")


@pytest.fixture(scope="module")
def images():
    originals = [np.asarray(portrait(i, size=72)) for i in range(3)]
    customized = [np.asarray(portrait(i + 20, size=72, shift=4)) for i in range(3)]
    return originals, customized


def _direct_image_embeddings(bundle, images):
    """open_clip's documented recipe: its transform on PIL images, encode_image, L2-normalise."""
    with torch.no_grad():
        pixels = torch.stack([bundle.preprocess(Image.fromarray(i)) for i in images])
        emb = bundle.model.encode_image(pixels)
    return emb / emb.norm(dim=-1, keepdim=True)


def _direct_text_embeddings(bundle, texts):
    with torch.no_grad():
        emb = bundle.model.encode_text(bundle.tokenizer(texts))
    return emb / emb.norm(dim=-1, keepdim=True)


def test_clip_i_agrees_with_direct_open_clip(bundle, images):
    originals, customized = images
    backbone = make_backbone("clip", "tiny", network=bundle)
    eo = torch.from_numpy(np.stack([f["image"] for f in backbone.encode(originals)]))
    ec = torch.from_numpy(np.stack([f["image"] for f in backbone.encode(customized)]))
    expected = (_direct_image_embeddings(bundle, originals) * _direct_image_embeddings(bundle, customized)).sum(-1)
    ours = clip_image_similarity(eo, ec)
    assert torch.allclose(ours, expected.double(), atol=1e-5)
    metric = ClipImageSimilarity()
    metric.update(eo, ec)
    assert abs(float(metric.compute()) - float(expected.mean())) < 1e-5


def test_clip_t_agrees_with_direct_open_clip(bundle, images):
    customized = images[1]
    backbone = make_backbone("clip", "tiny", network=bundle)
    ec = torch.from_numpy(np.stack([f["image"] for f in backbone.encode(customized)]))
    et = torch.from_numpy(backbone.encode_texts(CAPTIONS))
    expected = (_direct_image_embeddings(bundle, customized) * _direct_text_embeddings(bundle, CAPTIONS)).sum(-1)
    assert torch.allclose(clip_text_alignment(ec, et), expected.double(), atol=1e-5)
    metric = ClipTextAlignment(caption="full")
    metric.update(ec, et)
    assert metric.caption == "full" and abs(float(metric.compute()) - float(expected.mean())) < 1e-5


def test_clip_t_is_torchmetrics_clipscore_over_100(bundle, images):
    """CLIPScore takes a callable returning (model, processor), so it runs on the very same model.

    torchmetrics clips the aggregate at 0 (max(100 * mean cosine, 0)); the per-pair scores of
    its update helper are compared exactly, and the aggregate through that clipping.
    """
    from torchmetrics.functional.multimodal.clip_score import _clip_score_update
    from torchmetrics.multimodal.clip_score import CLIPScore

    customized = images[1]
    as_tensors = [torch.from_numpy(i.copy()).permute(2, 0, 1).contiguous() for i in customized]
    model, processor = clipscore_model_and_processor(bundle)
    with torch.no_grad():
        per_pair, n = _clip_score_update(as_tensors, CAPTIONS, model, processor)
    backbone = make_backbone("clip", "tiny", network=bundle)
    ec = torch.from_numpy(np.stack([f["image"] for f in backbone.encode(customized)]))
    ours = clip_text_alignment(ec, torch.from_numpy(backbone.encode_texts(CAPTIONS)))
    assert n == 3 and torch.allclose(ours, per_pair.double() / 100, atol=1e-5)

    score = CLIPScore(model_name_or_path=lambda: (model, processor))
    score.update(as_tensors, CAPTIONS)
    assert abs(float(score.compute()) / 100 - max(float(ours.mean()), 0.0)) < 1e-5
