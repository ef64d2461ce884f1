"""ID agrees with insightface's own FaceAnalysis pipeline on the same ONNX files; missing faces are counted."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from spf_bench import zoo
from spf_bench.metrics import IdentitySimilarity, identity_similarity
from spf_bench.metrics.backbones import make_backbone
from spf_bench.zoo.registry import folder_for
from support.metric_images import portrait

# one intra-op thread (see the single_thread fixture in conftest)
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def faces():
    return zoo.load("face", source="tiny")


@pytest.fixture(scope="module")
def face_analysis(tmp_path_factory):
    """insightface.app.FaceAnalysis reading the zoo's tiny ONNX files as a model pack."""
    from insightface.app import FaceAnalysis

    root = tmp_path_factory.mktemp("insightface")
    pack = root / "models" / "spf-tiny"
    pack.mkdir(parents=True)
    for onnx in folder_for("face", "tiny").glob("*.onnx"):
        shutil.copy(onnx, pack / onnx.name)
    app = FaceAnalysis(name="spf-tiny", root=str(root), allowed_modules=["detection", "recognition"],
                       providers=["CPUExecutionProvider"])
    app.prepare(ctx_id=-1, det_size=(160, 160))
    return app


def _reference_embedding(app, rgb):
    faces = app.get(np.ascontiguousarray(rgb[:, :, ::-1]))  # FaceAnalysis takes BGR
    if not faces:
        return None
    largest = max(faces, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
    return largest.embedding


def test_id_agrees_with_face_analysis(faces, face_analysis):
    originals = [np.asarray(portrait(i, size=96)) for i in range(3)]
    customized = [np.asarray(portrait(i + 30, size=96, shift=3)) for i in range(3)]
    backbone = make_backbone("face", "tiny", network=faces)
    eo = torch.from_numpy(np.stack([f["embedding"] for f in backbone.encode(originals)]))
    ec = torch.from_numpy(np.stack([f["embedding"] for f in backbone.encode(customized)]))
    ours, found = identity_similarity(eo, ec)
    expected = []
    for o, c in zip(originals, customized):
        ro, rc = _reference_embedding(face_analysis, o), _reference_embedding(face_analysis, c)
        assert ro is not None and rc is not None
        expected.append(float(np.dot(ro, rc) / np.linalg.norm(ro) / np.linalg.norm(rc)))
    assert found.all()
    assert np.allclose(ours.numpy(), expected, atol=1e-5), (ours, expected)
    assert np.allclose(eo[0].numpy(), _reference_embedding(face_analysis, originals[0]), atol=1e-5)


def test_pair_without_face_is_left_out_and_counted(faces):
    flat = np.full((96, 96, 3), 128, np.uint8)  # no texture: the detector finds nothing
    images_o = [np.asarray(portrait(1, size=96)), flat, np.asarray(portrait(2, size=96))]
    images_c = [np.asarray(portrait(3, size=96)), np.asarray(portrait(4, size=96)), flat]
    backbone = make_backbone("face", "tiny", network=faces)
    eo = torch.from_numpy(np.stack([f["embedding"] for f in backbone.encode(images_o)]))
    ec = torch.from_numpy(np.stack([f["embedding"] for f in backbone.encode(images_c)]))
    metric = IdentitySimilarity()
    metric.update(eo, ec)
    values = metric.per_pair()
    assert torch.isfinite(values).tolist() == [True, False, False]
    assert abs(metric.face_found_rate() - 1 / 3) < 1e-12
    assert metric.count() == 1 and abs(float(metric.compute()) - float(values[0])) < 1e-12
