"""Seg-Cons: the IoU arithmetic, and SAM's best-of-three masks equal SamPredictor's own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spf_bench import zoo
from spf_bench.metrics import SegmentationConsistency, segmentation_consistency
from spf_bench.metrics.backbones import SamBackbone, make_backbone
from support.metric_images import portrait

# one intra-op thread (see the single_thread fixture in conftest)
pytestmark = pytest.mark.usefixtures("single_thread")


def test_iou_arithmetic():
    masks_o = torch.zeros(1, 3, 2, 2, dtype=torch.bool)
    masks_c = torch.zeros(1, 3, 2, 2, dtype=torch.bool)
    masks_o[0, 0, 0, :] = True  # point 0: IoU 1/2
    masks_c[0, 0, 0, 0] = True
    masks_o[0, 1] = True  # point 1: IoU 1
    masks_c[0, 1] = True
    # point 2: both empty -> agreement, IoU 1
    assert abs(float(segmentation_consistency(masks_o, masks_c)[0]) - 100 * (0.5 + 1 + 1) / 3) < 1e-12
    metric = SegmentationConsistency()
    metric.update(masks_o, masks_c)
    metric.update(masks_o, masks_o)
    assert torch.allclose(metric.per_pair(), torch.tensor([250 / 3, 100.0], dtype=torch.float64))


def test_grid_is_cell_centres():
    backbone = SamBackbone("tiny", points_per_side=2, network=object())
    assert backbone.grid(64, 32).tolist() == [[8.0, 16.0], [24.0, 16.0], [8.0, 48.0], [24.0, 48.0]]


def test_best_masks_equal_sam_predictor_and_identical_images_score_100():
    from segment_anything import SamPredictor

    sam = zoo.load("sam", source="tiny")
    backbone = make_backbone("sam", "tiny", network=sam, points_per_side=2)
    image = np.asarray(portrait(5, size=48))
    feature = backbone.encode([image])[0]
    ours = SamBackbone.unpack(feature)
    assert ours.shape == (4, 48, 48) and ours.dtype == bool

    predictor = SamPredictor(sam)
    predictor.set_image(image)
    masks, scores, _ = predictor.predict_torch(
        predictor.transform.apply_coords_torch(backbone.grid(48, 48), (48, 48))[:, None, :],
        torch.ones(4, 1), multimask_output=True)
    expected = masks[torch.arange(4), scores.argmax(dim=1)].numpy()
    assert (ours == expected).all()

    same = torch.from_numpy(ours)[None]
    assert float(segmentation_consistency(same, same)[0]) == 100.0
