"""The FID Inception network of the zoo (torchmetrics' NoTrainInceptionV3, torch-fidelity's weights)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from spf_bench import zoo
from spf_bench.core.errors import WeightsCorruptError, WeightsMissingError
from spf_bench.zoo import registry
from spf_bench.zoo.networks import inception

NAME = "inception"


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _fake_weights_dir(tmp_path: Path, monkeypatch, data: bytes) -> Path:
    target = tmp_path / NAME
    target.mkdir()
    (target / inception.WEIGHTS_FILE).write_bytes(data)
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    return target / inception.WEIGHTS_FILE


class Smuggled:
    """An arbitrary Python object, which a safe load must refuse to rebuild."""


def test_tiny_loads_through_the_real_loader_and_gives_2048_features():
    from torchmetrics.image.fid import NoTrainInceptionV3

    model = zoo.load(NAME, source="tiny")
    assert isinstance(model, NoTrainInceptionV3) and not model.training
    images = torch.randint(0, 256, (2, 3, 64, 80), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        features = model(images)
    assert features.shape == (2, inception.FEATURE_DIM) and features.dtype == torch.float32
    assert torch.isfinite(features).all() and features.std() > 0
    assert not any(p.requires_grad for p in model.parameters())


def test_tiny_build_is_byte_identical(tmp_path):
    inception.NETWORK.write_tiny(tmp_path / "a")
    inception.NETWORK.write_tiny(tmp_path / "b")
    first = _tree_hashes(tmp_path / "a")
    assert list(first) == [inception.WEIGHTS_FILE] and first == _tree_hashes(tmp_path / "b")


def test_pretrained_missing_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsMissingError) as info:
        zoo.load(NAME, source="pretrained")
    message = str(info.value)
    assert str(tmp_path / NAME / inception.WEIGHTS_FILE) in message and inception.WEIGHTS_URL in message
    assert "\n" not in message


def test_truncated_file_is_reported_in_one_sentence(tmp_path, monkeypatch):
    data = (registry.ensure_tiny(inception.NETWORK) / inception.WEIGHTS_FILE).read_bytes()
    path = _fake_weights_dir(tmp_path, monkeypatch, data[: len(data) // 2])
    with pytest.raises(WeightsCorruptError, match="truncated or not a valid checkpoint") as info:
        zoo.load(NAME, source="pretrained")
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_wrong_state_dict_is_reported(tmp_path, monkeypatch):
    _fake_weights_dir(tmp_path, monkeypatch, b"")
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / NAME / inception.WEIGHTS_FILE)
    with pytest.raises(WeightsCorruptError, match="does not fit the FID Inception-v3 architecture"):
        zoo.load(NAME, source="pretrained")


def test_pickled_objects_are_refused_not_run(tmp_path, monkeypatch):
    # torch-fidelity itself would unpickle this file fully; the zoo never lets it.
    _fake_weights_dir(tmp_path, monkeypatch, b"")
    torch.save({"fc.weight": Smuggled()}, tmp_path / NAME / inception.WEIGHTS_FILE)
    with pytest.raises(WeightsCorruptError, match="pickled Python objects"):
        zoo.load(NAME, source="pretrained")


def test_random_is_the_real_architecture_on_meta():
    model = zoo.load(NAME, source="random", device="meta")
    assert sum(p.numel() for p in model.parameters()) == 23_850_960
    assert next(model.parameters()).device.type == "meta"
