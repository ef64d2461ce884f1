"""insightface face detection (SCRFD) and ArcFace recognition, as ONNX files run by onnxruntime.

Layout: ``SPF_WEIGHTS_DIR/face/det_10g.onnx`` and ``SPF_WEIGHTS_DIR/face/w600k_r50.onnx``, the
detector and recogniser of insightface's ``buffalo_l`` pack (unzip
https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip, or copy them
from ``~/.insightface/models/buffalo_l/`` where insightface has fetched them once). Both files
go through ``insightface.model_zoo.get_model``, which routes an ONNX file by its signature:
five or more outputs make an SCRFD detector, a square input of at least 112 px a multiple of 16
makes an ArcFace recogniser. The loader returns :class:`FaceModels`; the real detector is
prepared at 640x640 px, as insightface's ``FaceAnalysis`` does.

Tiny: two small ONNX files with exactly those signatures.
- ``det_10g.onnx``: a hand-set detector (no random part) with a fixed 160x160 input, so
  insightface runs it at that size whatever size it is prepared with. It gives SCRFD's nine
  outputs (scores, box distances and five key points for strides 8, 16 and 32, two anchors
  per cell, in that order). Only the stride-32 level can fire: each cell's score is
  ``sigmoid(8 tanh(100 v) - 16 r^2 - 4)``, with ``v`` the cell's pixel variance (normalised
  input) and ``r`` its anchor's distance to the image centre in half-image units; every
  anchor predicts the same box, a square of half the image side centred slightly above the
  middle, with key points placed where ArcFace's template puts eyes, nose and mouth. So any
  textured, portrait-like image yields exactly one face there (after NMS), and a flat square
  image (variance 0, score at most 0.018) yields none. The box is centred for square images,
  which is what the suite generates; insightface pads other shapes at the bottom or right
  before detection, which moves the box off their centre (and the padding's edge counts as
  texture).
- ``w600k_r50.onnx``: a seeded four-convolution network, [N, 3, 112, 112] -> [N, 128]
  (insightface reads the embedding size from the file; the real one gives 512).
Random: the real recogniser architecture (insightface's iresnet50, 43.6M parameters, 512-d
embedding) with seeded random weights, and the tiny hand-set detector above (SCRFD-10G's own
architecture is not rebuilt here). Both are exported once into the cache folder, because
insightface reads its models from files. On the meta device, where only shapes matter,
:class:`FaceArchitectures` holds the two torch modules instead.

ONNX files always run in float32; ``dtype`` is ignored. ``device`` picks onnxruntime's CUDA
provider when onnxruntime has one, its CPU provider otherwise.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spf_bench.core.errors import SpfError, WeightsCorruptError
from spf_bench.core import paths
from spf_bench.zoo.registry import TINY_FORMAT_VERSION, Network, WeightFile, build_folder_atomically, register

BUFFALO_L_URL = "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip"
DET_FILE = "det_10g.onnx"
REC_FILE = "w600k_r50.onnx"
REAL_DET_SIZE = 640
TINY_DET_SIZE = 160
TINY_EMBEDDING = 128
REAL_EMBEDDING = 512
ARC_INPUT = 112
TINY_SEED = 2112
ONNX_OPSET = 17
STRIDES = (8, 16, 32)
ANCHORS_PER_CELL = 2

# ArcFace's five-point template (eyes, nose tip, mouth corners) in its 112 px crop: the
# tiny detector puts its key points at the same places within its box, so alignment is a
# plain crop of the box.
ARCFACE_TEMPLATE = ((38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655), (70.7299, 92.2041))


# ----------------------------------------------------------------------------- the wrapper

@dataclass
class FaceModels:
    """insightface's SCRFD detector (already prepared) and ArcFace recogniser."""

    detector: Any
    recognizer: Any

    @property
    def embedding_size(self) -> int:
        return int(self.recognizer.output_shape[-1])

    def largest_face(self, image: np.ndarray):
        """The largest detected face of an RGB uint8 [H, W, 3] image (an insightface ``Face``), or None."""
        return self._largest_face(_as_bgr(image))

    def largest_face_embedding(self, image: np.ndarray) -> np.ndarray | None:
        """ArcFace embedding (not normalised, float32 [D]) of the largest face in an RGB uint8 image, or None.

        The face is aligned to ArcFace's 112 px template by insightface's own ``recognizer.get``.
        """
        bgr = _as_bgr(image)
        face = self._largest_face(bgr)
        if face is None:
            return None
        with warnings.catch_warnings():
            # insightface's alignment calls a scikit-image method deprecated in 0.26; the
            # warning says nothing about the suite's results and would repeat per image.
            warnings.filterwarnings("ignore", category=FutureWarning, module="insightface")
            embedding = self.recognizer.get(bgr, face)
        return np.asarray(embedding, dtype=np.float32)

    def _largest_face(self, bgr: np.ndarray):
        from insightface.app.common import Face

        boxes, keypoints = self.detector.detect(bgr, max_num=0)
        if boxes.shape[0] == 0:
            return None
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        best = int(np.argmax(areas))
        return Face(bbox=boxes[best, :4], kps=keypoints[best], det_score=float(boxes[best, 4]))


@dataclass
class FaceArchitectures:
    """The two networks as torch modules (what ``random`` gives on the meta device)."""

    detector: nn.Module
    recognizer: nn.Module


def _as_bgr(image: np.ndarray) -> np.ndarray:
    # insightface works on OpenCV's BGR images; the suite passes RGB.
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise SpfError(f"Face detection needs an RGB uint8 image of shape [H, W, 3], got {got}.")
    return np.ascontiguousarray(image[:, :, ::-1])


# ----------------------------------------------------------------------------- loading

def _providers(device: torch.device) -> tuple[list[str], int]:
    import onnxruntime

    if device.type == "cuda":
        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"], device.index or 0
        warnings.warn("onnxruntime has no CUDA provider here, so the face models run on the CPU.", stacklevel=3)
    return ["CPUExecutionProvider"], -1


def _session_options():
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # Follow torch's thread budget rather than onnxruntime's default of every core.
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    return options


def _insightface_model(path: Path, task: str, providers: list[str]):
    from insightface.model_zoo import get_model

    try:
        model = get_model(str(path), providers=providers, sess_options=_session_options())
    except Exception as exc:  # onnxruntime and protobuf raise many types for a damaged file
        line = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise WeightsCorruptError(f"{path} is truncated or not a valid ONNX model ({type(exc).__name__}: {line}).") from None
    found = getattr(model, "taskname", None)
    if found != task:
        raise WeightsCorruptError(f"{path} is not a face {task} model (insightface recognises it as {found or 'nothing it knows'}).")
    return model


def load_folder(folder: Path, device: torch.device, dtype: torch.dtype) -> FaceModels:
    providers, ctx_id = _providers(device)
    detector = _insightface_model(folder / DET_FILE, "detection", providers)
    recognizer = _insightface_model(folder / REC_FILE, "recognition", providers)
    # A detector with a fixed input size (the tiny one) keeps it: insightface ignores
    # input_size for such files.
    detector.prepare(ctx_id, input_size=(REAL_DET_SIZE, REAL_DET_SIZE))
    recognizer.prepare(ctx_id)
    return FaceModels(detector, recognizer)


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


# ----------------------------------------------------------------------------- writing ONNX

def _export(module: nn.Module, path: Path, example: torch.Tensor, outputs: list[str], dynamic: dict) -> None:
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated, but it writes identical bytes on every run
        # (the tiny zoo must build byte-identically) and gives a plain opset-17 graph.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(), (example,), str(path), dynamo=False, opset_version=ONNX_OPSET,
            input_names=["input.1"], output_names=outputs, dynamic_axes=dynamic,
        )


def _write_detector(path: Path) -> None:
    names = [f"{kind}_{s}" for kind in ("score", "bbox", "kps") for s in STRIDES]
    _export(CentrePriorFaceDetector(TINY_DET_SIZE), path, torch.zeros(1, 3, TINY_DET_SIZE, TINY_DET_SIZE), names, {})


def _write_recognizer(module: nn.Module, path: Path) -> None:
    example = torch.zeros(1, 3, ARC_INPUT, ARC_INPUT)
    _export(module, path, example, ["embedding"], {"input.1": {0: "batch"}, "embedding": {0: "batch"}})


def write_tiny(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _write_detector(folder / DET_FILE)
    torch.manual_seed(TINY_SEED)
    _write_recognizer(TinyArcFace(), folder / REC_FILE)


def _seeded_iresnet50() -> IResNet50:
    # PyTorch's default init, unlike He init, keeps the sum of 24 residual branches at an
    # ordinary scale (embeddings of norm ~1 rather than ~1e5).
    torch.manual_seed(TINY_SEED)
    return IResNet50().eval()


def _random_folder() -> Path:
    """The seeded real-size recogniser and the tiny detector as ONNX files, built once into the cache."""
    folder = paths.cache_dir() / f"random-v{TINY_FORMAT_VERSION}" / "face"
    if (folder / REC_FILE).is_file() and (folder / DET_FILE).is_file():
        return folder
    def write(tmp: Path) -> None:
        _write_detector(tmp / DET_FILE)
        _write_recognizer(_seeded_iresnet50(), tmp / REC_FILE)

    return build_folder_atomically(folder, write)


def build_random(device: torch.device, dtype: torch.dtype) -> FaceModels | FaceArchitectures:
    if device.type == "meta":
        with torch.device("meta"):
            return FaceArchitectures(CentrePriorFaceDetector(TINY_DET_SIZE), IResNet50())
    return load_folder(_random_folder(), device, dtype)


_BUFFALO_ORIGIN = f"insightface's buffalo_l pack, {BUFFALO_L_URL} (unzip it; the file is inside)"

NETWORK = register(Network(
    name="face",
    summary="insightface buffalo_l: SCRFD-10G detector + ArcFace R50 recogniser (ONNX, onnxruntime)",
    files=(
        WeightFile(DET_FILE, _BUFFALO_ORIGIN),
        WeightFile(REC_FILE, _BUFFALO_ORIGIN),
    ),
    load_folder=load_folder,
    write_tiny=write_tiny,
    build_random=build_random,
))
