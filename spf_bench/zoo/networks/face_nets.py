"""The torch modules behind the tiny and random face networks, exported to ONNX by
:mod:`spf_bench.zoo.networks.face`: the hand-set centre-prior detector (SCRFD's outputs),
the tiny ArcFace and insightface's iresnet50 recogniser architecture."""

from __future__ import annotations

import torch
from torch import nn

TINY_DET_SIZE = 160
TINY_EMBEDDING = 128
REAL_EMBEDDING = 512
ARC_INPUT = 112
STRIDES = (8, 16, 32)
ANCHORS_PER_CELL = 2

# ArcFace's five-point template (eyes, nose tip, mouth corners) in its 112 px crop: the
# tiny detector puts its key points at the same places within its box, so alignment is a
# plain crop of the box.
ARCFACE_TEMPLATE = ((38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655), (70.7299, 92.2041))


# ----------------------------------------------------------------------------- tiny detector

class CentrePriorFaceDetector(nn.Module):
    """SCRFD's input/output signature around a hand-set "textured centre is a face" rule.

    Input: [1, 3, S, S], normalised as SCRFD feeds it ((RGB - 127.5) / 128). Outputs, in the
    order SCRFD reads them: scores [n_s, 1] for s = 8, 16, 32, then box distances [n_s, 4],
    then key-point offsets [n_s, 10], with n_s = (S / s)^2 * 2 anchors, distances in units
    of the stride (SCRFD multiplies by it).
    """

    def __init__(self, size: int = TINY_DET_SIZE):
        super().__init__()
        self.size = size
        self.contrast_scale = nn.Parameter(torch.tensor(100.0))  # variance 0.01 (pixel std ~13/255) is "textured"
        self.contrast_gain = nn.Parameter(torch.tensor(8.0))
        self.centre_penalty = nn.Parameter(torch.tensor(16.0))  # cells beyond r = 0.5 never fire
        # Only the coarsest level may fire: a face of half the image is a stride-32 object.
        self.level_bias = nn.Parameter(torch.tensor([-30.0, -30.0, -4.0]))
        self.face_centre = nn.Parameter(torch.tensor([0.5 * size, 0.45 * size]))  # portraits sit a little high
        self.face_half = nn.Parameter(torch.tensor(0.25 * size))
        self.template = nn.Parameter(torch.tensor(ARCFACE_TEMPLATE) / ARC_INPUT)
        for stride in STRIDES:
            anchors, dist2 = self._geometry(stride)
            self.register_buffer(f"anchors_{stride}", anchors, persistent=False)
            self.register_buffer(f"centre_dist2_{stride}", dist2, persistent=False)

    def _geometry(self, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
        # SCRFD's anchor centres: the top-left corner of each cell, row-major, two per cell.
        cells = self.size // stride
        ys, xs = torch.meshgrid(torch.arange(cells), torch.arange(cells), indexing="ij")
        corners = torch.stack([xs, ys], dim=-1).reshape(-1, 2).float() * stride
        anchors = corners.repeat_interleave(ANCHORS_PER_CELL, dim=0)
        dist2 = ((corners - self.size / 2) ** 2).sum(-1) / (self.size / 2) ** 2
        return anchors, dist2

    def forward(self, x: torch.Tensor):
        scores, boxes, points = [], [], []
        for level, stride in enumerate(STRIDES):
            scores.append(self._scores(x, stride, level))
            anchors = getattr(self, f"anchors_{stride}")
            boxes.append(self._box_distances(anchors, stride))
            points.append(self._keypoint_offsets(anchors, stride))
        return (*scores, *boxes, *points)

    def _scores(self, x: torch.Tensor, stride: int, level: int) -> torch.Tensor:
        mean = nn.functional.avg_pool2d(x, stride, stride)
        variance = torch.relu(nn.functional.avg_pool2d(x * x, stride, stride) - mean * mean).mean(dim=1).reshape(-1, 1)
        dist2 = getattr(self, f"centre_dist2_{stride}").reshape(-1, 1)
        logits = self.contrast_gain * torch.tanh(self.contrast_scale * variance) - self.centre_penalty * dist2 + self.level_bias[level]
        return torch.sigmoid(torch.cat([logits] * ANCHORS_PER_CELL, dim=1).reshape(-1, 1))

    def _box_distances(self, anchors: torch.Tensor, stride: int) -> torch.Tensor:
        top_left = self.face_centre - self.face_half
        bottom_right = self.face_centre + self.face_half
        return torch.cat([anchors - top_left, bottom_right - anchors], dim=1) / stride

    def _keypoint_offsets(self, anchors: torch.Tensor, stride: int) -> torch.Tensor:
        points = self.face_centre - self.face_half + self.template * (2 * self.face_half)  # [5, 2]
        return ((points[None] - anchors[:, None]) / stride).reshape(-1, 10)


# ----------------------------------------------------------------------------- recognisers

class TinyArcFace(nn.Module):
    """[N, 3, 112, 112] in [-1, 1] -> [N, 128]: four strided convolutions and a linear map."""

    def __init__(self, embedding: int = TINY_EMBEDDING):
        super().__init__()
        widths = (3, 16, 32, 64, 64)
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1))
            if i < len(widths) - 2:
                layers.append(nn.PReLU(c_out))
        self.body = nn.Sequential(*layers)
        # Flattening (not pooling) keeps where things are in the aligned face.
        self.fc = nn.Linear(widths[-1] * 7 * 7, embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.body(x), 1))


class _IBasicBlock(nn.Module):
    """iresnet's pre-activation block: BN, conv, BN, PReLU, strided conv, BN, plus shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in, eps=1e-5)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out, eps=1e-5)
        self.prelu = nn.PReLU(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out, eps=1e-5)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out, eps=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet50(nn.Module):
    """ArcFace's iresnet50 backbone (stages of 3, 4, 14, 3 blocks), [N, 3, 112, 112] -> [N, 512]."""

    def __init__(self, embedding: int = REAL_EMBEDDING):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        stages, c_in = [], 64
        for c_out, blocks in ((64, 3), (128, 4), (256, 14), (512, 3)):
            stages.append(nn.Sequential(*[_IBasicBlock(c_in if i == 0 else c_out, c_out, 2 if i == 0 else 1) for i in range(blocks)]))
            c_in = c_out
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.fc = nn.Linear(512 * 7 * 7, embedding)
        self.features = nn.BatchNorm1d(embedding, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.features(self.fc(torch.flatten(self.bn2(x), 1)))
