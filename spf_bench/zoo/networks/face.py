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
# The embedding sizes are part of this network's description (a tiny file gives 128, a real one 512).
from spf_bench.zoo.networks.face_nets import (  # noqa: F401
    ARC_INPUT,
    REAL_EMBEDDING,
    STRIDES,
    TINY_DET_SIZE,
    TINY_EMBEDDING,
    CentrePriorFaceDetector,
    IResNet50,
    TinyArcFace,
)
from spf_bench.zoo.registry import TINY_FORMAT_VERSION, Network, WeightFile, build_folder_atomically, register

BUFFALO_L_URL = "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip"
DET_FILE = "det_10g.onnx"
REC_FILE = "w600k_r50.onnx"
REAL_DET_SIZE = 640
TINY_SEED = 2112
ONNX_OPSET = 17


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


def _random_complete(folder: Path) -> bool:
    return (folder / REC_FILE).is_file() and (folder / DET_FILE).is_file()


def _random_folder() -> Path:
    """The seeded real-size recogniser and the tiny detector as ONNX files, built once into the cache."""
    folder = paths.cache_dir() / f"random-v{TINY_FORMAT_VERSION}" / "face"
    if _random_complete(folder):
        return folder
    def write(tmp: Path) -> None:
        _write_detector(tmp / DET_FILE)
        _write_recognizer(_seeded_iresnet50(), tmp / REC_FILE)

    return build_folder_atomically(folder, write, finished=_random_complete)


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
