"""The world's identity embedder: an ArcFace-style recogniser of the identity factors.

It sees what insightface's recognition step sees: the 112 px crop that ``norm_crop`` cuts
with the key points of the face detector, as RGB in [-1, 1]. It is trained with an additive
angular margin loss over the training identities, so that portraits of one identity embed
close together whatever their hair, clothes, accessories or style, and it is exported as
an insightface recognition ONNX file ([N, 3, 112, 112] -> [N, 128]).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

ARC_INPUT = 112
EMBEDDING = 128


class IdentityEmbedder(nn.Module):
    def __init__(self, widths=(32, 64, 96, 128), embedding: int = EMBEDDING):
        super().__init__()
        layers, c_in = [], 3
        for c_out in widths:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.PReLU(c_out)]
            c_in = c_out
        self.body = nn.Sequential(*layers)
        # Flattened, as ArcFace's own head does: the geometry of the face is the identity.
        self.fc = nn.Linear(c_in * (ARC_INPUT // 2 ** len(widths)) ** 2, embedding)
        self.features = nn.BatchNorm1d(embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.fc(torch.flatten(self.body(x), 1)))


class AngularMarginHead(nn.Module):
    """ArcFace's loss: cos(theta + m) for the true class, scaled by s, then cross-entropy."""

    def __init__(self, embedding: int, classes: int, scale: float = 30.0, margin: float = 0.3):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, embedding) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = nn.functional.normalize(features) @ nn.functional.normalize(self.weight).T
        theta = torch.acos(cos.clamp(-1 + 1e-6, 1 - 1e-6))
        target = torch.cos(theta + self.margin)
        onehot = nn.functional.one_hot(labels, cos.shape[1]).bool()
        logits = torch.where(onehot, target, cos) * self.scale
        return nn.functional.cross_entropy(logits, labels)


def detector_keypoints(size: int) -> np.ndarray:
    """The five key points the face detector finds on every portrait of the world, [5, 2].

    Read from the tiny zoo's hand-set detector (the world's portraits put the face where
    its box is), on a blank-but-textured probe, so the crops here match insightface's.
    """
    from spf_bench.zoo import load

    from spf_bench.world.attributes import sample_attributes
    from spf_bench.world.render import render

    faces = load("face", source="tiny")
    probe = render(sample_attributes(np.random.default_rng(0)), 0, 0, size)
    face = faces.largest_face(probe)
    if face is None:
        raise RuntimeError("the face detector finds no face on a rendered portrait")
    return np.asarray(face.kps, dtype=np.float32)


def aligned_crops(images: np.ndarray, keypoints: np.ndarray) -> torch.Tensor:
    """insightface's alignment of RGB uint8 portraits: [N, 3, 112, 112] in [-1, 1]."""
    from insightface.utils.face_align import norm_crop

    crops = np.stack([norm_crop(img, landmark=keypoints, image_size=ARC_INPUT) for img in images])
    return torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def export_onnx(model: IdentityEmbedder, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model.eval(), (torch.zeros(1, 3, ARC_INPUT, ARC_INPUT),), str(path), dynamo=False, opset_version=17,
            input_names=["input.1"], output_names=["embedding"],
            dynamic_axes={"input.1": {0: "batch"}, "embedding": {0: "batch"}},
        )
