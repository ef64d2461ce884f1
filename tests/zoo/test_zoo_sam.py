"""The SAM network of the zoo: tiny through the real loader, ViT-H size, pretrained errors."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from spf_bench import zoo
from spf_bench.core.errors import WeightsCorruptError, WeightsMissingError
from spf_bench.zoo import registry
from spf_bench.zoo.networks import sam as sam_net


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_sam():
    return zoo.load("sam", source="tiny")


def test_tiny_sam_predictor_gives_masks_of_image_size(tiny_sam):
    from segment_anything import SamPredictor
    from segment_anything.modeling import Sam

    assert isinstance(tiny_sam, Sam) and not tiny_sam.training
    assert tiny_sam.image_encoder.img_size == 1024  # the real input size, so real resizing runs
    predictor = SamPredictor(tiny_sam)
    image = (np.random.RandomState(0).rand(64, 64, 3) * 255).astype(np.uint8)
    predictor.set_image(image)
    assert predictor.features.shape == (1, sam_net.TINY_ARCH.prompt_embed_dim, 64, 64)
    masks, scores, low_res = predictor.predict(point_coords=np.array([[20, 40]]), point_labels=np.array([1]))
    assert masks.shape == (3, 64, 64) and masks.dtype == bool
    assert scores.shape == (3,) and np.isfinite(scores).all()
    assert low_res.shape == (3, 256, 256)


def test_tiny_sam_is_small_and_described_by_arch_json(tiny_sam):
    folder = registry.tiny_folder("sam")
    arch = json.loads((folder / "arch.json").read_text())
    assert arch["encoder_embed_dim"] == 32 and arch["encoder_global_attn_indexes"] == [1]
    assert sum(p.numel() for p in tiny_sam.parameters()) < 500_000


def test_tiny_sam_build_is_byte_identical(tmp_path):
    sam_net.write_tiny(tmp_path / "a")
    sam_net.write_tiny(tmp_path / "b")
    first = _hashes(tmp_path / "a")
    assert set(first) == {"arch.json", "sam_vit_h_4b8939.pth"}
    assert first == _hashes(tmp_path / "b")


def test_random_sam_is_vit_h_on_meta():
    model = zoo.load("sam", source="random", device="meta")
    assert sum(p.numel() for p in model.parameters()) == 641_090_608
    assert all(p.is_meta for p in model.parameters())


def test_pretrained_sam_missing_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsMissingError) as info:
        zoo.load("sam", source="pretrained")
    message = str(info.value)
    assert "sam_vit_h_4b8939.pth" in message and sam_net.URL in message
    assert "\n" not in message


@pytest.fixture()
def weights_dir(tiny_sam, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    shutil.copytree(registry.tiny_folder("sam"), tmp_path / "sam")
    return tmp_path / "sam"


def test_pretrained_layout_loads_through_the_same_loader(weights_dir, tiny_sam):
    model = zoo.load("sam", source="pretrained")
    for (name, ours), (_, ref) in zip(model.state_dict().items(), tiny_sam.state_dict().items()):
        assert torch.equal(ours, ref), name


def test_truncated_sam_checkpoint_is_reported(weights_dir):
    path = weights_dir / "sam_vit_h_4b8939.pth"
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(WeightsCorruptError, match="sam_vit_h_4b8939.pth is truncated"):
        zoo.load("sam", source="pretrained")


def test_checkpoint_of_another_architecture_is_reported(weights_dir):
    arch = json.loads((weights_dir / "arch.json").read_text())
    arch["encoder_depth"] = 3
    arch["encoder_global_attn_indexes"] = [2]
    (weights_dir / "arch.json").write_text(json.dumps(arch))
    with pytest.raises(WeightsCorruptError, match="does not fit the Sam architecture"):
        zoo.load("sam", source="pretrained")
