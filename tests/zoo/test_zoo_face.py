"""The face network of the zoo (insightface SCRFD + ArcFace as ONNX files, run by onnxruntime)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from spf_bench import zoo
from spf_bench.core.errors import SpfError, WeightsCorruptError, WeightsMissingError
from spf_bench.zoo import registry
from spf_bench.zoo.networks import face

NAME = "face"


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _portrait(size: int = 256, seed: int = 0) -> np.ndarray:
    """A crude RGB portrait: noisy backdrop, skin-coloured oval, dark eyes and mouth."""
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(90, 25, (size, size, 3)), 0, 255)
    ys, xs = np.mgrid[:size, :size] / size
    image[((xs - 0.5) / 0.22) ** 2 + ((ys - 0.45) / 0.3) ** 2 < 1] = (224, 172, 140)
    for cx in (0.41, 0.59):
        image[((xs - cx) / 0.04) ** 2 + ((ys - 0.4) / 0.02) ** 2 < 1] = (40, 30, 30)
    image[(abs(xs - 0.5) < 0.08) & (abs(ys - 0.6) < 0.012)] = (150, 50, 60)
    return image.astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_faces():
    return zoo.load(NAME, source="tiny")


def test_tiny_loads_through_insightface_and_finds_one_face(tiny_faces):
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX
    from insightface.model_zoo.scrfd import SCRFD

    assert isinstance(tiny_faces.detector, SCRFD) and isinstance(tiny_faces.recognizer, ArcFaceONNX)
    assert tiny_faces.detector.input_size == (face.TINY_DET_SIZE, face.TINY_DET_SIZE)
    image = _portrait()
    boxes, points = tiny_faces.detector.detect(np.ascontiguousarray(image[:, :, ::-1]), max_num=0)
    assert boxes.shape == (1, 5) and points.shape == (1, 5, 2)
    x1, y1, x2, y2, score = boxes[0]
    assert score > 0.5 and 0.4 < (x2 - x1) / image.shape[1] < 0.6 and abs((x1 + x2) / 2 - 128) < 2
    embedding = tiny_faces.largest_face_embedding(image)
    assert embedding.shape == (face.TINY_EMBEDDING,) == (tiny_faces.embedding_size,)
    assert embedding.dtype == np.float32 and np.isfinite(embedding).all()


def test_flat_image_has_no_face(tiny_faces):
    assert tiny_faces.largest_face(np.full((128, 128, 3), 128, np.uint8)) is None
    assert tiny_faces.largest_face_embedding(np.zeros((96, 96, 3), np.uint8)) is None


def test_embedding_depends_on_the_face(tiny_faces):
    first = tiny_faces.largest_face_embedding(_portrait(seed=0))
    again = tiny_faces.largest_face_embedding(_portrait(seed=0))
    other = tiny_faces.largest_face_embedding(255 - _portrait(seed=1))
    assert np.array_equal(first, again) and not np.allclose(first, other)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # insightface's own use of a deprecated scikit-image call
def test_direct_insightface_use_gives_the_same_embedding(tiny_faces):
    from insightface.app.common import Face
    from insightface.model_zoo import get_model

    folder = registry.ensure_tiny(face.NETWORK)
    detector = get_model(str(folder / face.DET_FILE), providers=["CPUExecutionProvider"])
    detector.prepare(-1, input_size=(640, 640))
    recognizer = get_model(str(folder / face.REC_FILE), providers=["CPUExecutionProvider"])
    recognizer.prepare(-1)
    bgr = np.ascontiguousarray(_portrait(seed=3)[:, :, ::-1])
    boxes, points = detector.detect(bgr, max_num=0)
    largest = int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
    theirs = recognizer.get(bgr, Face(bbox=boxes[largest, :4], kps=points[largest], det_score=boxes[largest, 4]))
    ours = tiny_faces.largest_face_embedding(_portrait(seed=3))
    assert np.allclose(ours, theirs, atol=1e-6)


def test_bad_image_is_one_sentence(tiny_faces):
    with pytest.raises(SpfError, match=r"RGB uint8 image of shape \[H, W, 3\]"):
        tiny_faces.largest_face(np.zeros((32, 32), np.float32))


def test_tiny_build_is_byte_identical(tmp_path):
    face.NETWORK.write_tiny(tmp_path / "a")
    face.NETWORK.write_tiny(tmp_path / "b")
    first = _tree_hashes(tmp_path / "a")
    assert sorted(first) == sorted([face.DET_FILE, face.REC_FILE]) and first == _tree_hashes(tmp_path / "b")


def test_pretrained_missing_names_both_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsMissingError) as info:
        zoo.load(NAME, source="pretrained")
    message = str(info.value)
    for name in (face.DET_FILE, face.REC_FILE):
        assert str(tmp_path / NAME / name) in message
    assert "buffalo_l" in message and "\n" not in message


@pytest.mark.parametrize("broken", [face.DET_FILE, face.REC_FILE])
def test_truncated_file_is_reported_in_one_sentence(broken, tmp_path, monkeypatch):
    tiny = registry.ensure_tiny(face.NETWORK)
    (tmp_path / NAME).mkdir()
    for name in (face.DET_FILE, face.REC_FILE):
        data = (tiny / name).read_bytes()
        (tmp_path / NAME / name).write_bytes(data[: len(data) // 2] if name == broken else data)
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsCorruptError, match="truncated or not a valid ONNX model") as info:
        zoo.load(NAME, source="pretrained")
    assert str(tmp_path / NAME / broken) in str(info.value) and "\n" not in str(info.value)


def test_swapped_files_are_reported(tmp_path, monkeypatch):
    tiny = registry.ensure_tiny(face.NETWORK)
    (tmp_path / NAME).mkdir()
    for name in (face.DET_FILE, face.REC_FILE):
        (tmp_path / NAME / name).write_bytes((tiny / face.REC_FILE).read_bytes())
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsCorruptError, match="is not a face detection model"):
        zoo.load(NAME, source="pretrained")


def test_random_on_meta_is_the_real_recogniser():
    architectures = zoo.load(NAME, source="random", device="meta")
    assert sum(p.numel() for p in architectures.recognizer.parameters()) == 43_590_848
    with torch.device("meta"):
        out = architectures.recognizer(torch.zeros(2, 3, 112, 112))
    assert out.shape == (2, face.REAL_EMBEDDING)
