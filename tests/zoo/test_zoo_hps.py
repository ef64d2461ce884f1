"""The HPS v2.1 network of the zoo: tiny through the real loader, equality with hpsv2's own
scorer, ViT-H-14 size, pretrained errors."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spf_bench import zoo
from spf_bench.core.errors import SpfError, WeightsCorruptError, WeightsMissingError
from spf_bench.zoo import registry
from spf_bench.zoo.networks import hps as hps_net

PROMPTS = ["a portrait of a woman with red hair", "an old man wearing glasses, oil painting", "a child laughing"]


def _images() -> list[Image.Image]:
    # Different sizes and aspect ratios, so hpsv2's resize-and-pad preprocessing matters.
    rng = np.random.RandomState(7)
    return [Image.fromarray((rng.rand(h, w, 3) * 255).astype(np.uint8)) for h, w in ((64, 64), (80, 48), (40, 120))]


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_hps():
    return zoo.load("hps", source="tiny")


def test_tiny_hps_scores_one_value_per_pair(tiny_hps):
    assert isinstance(tiny_hps, hps_net.HpsBundle) and not tiny_hps.model.training
    assert tiny_hps.model.visual.image_size == (224, 224)
    scores = tiny_hps.score(_images(), PROMPTS)
    assert scores.shape == (3,) and scores.dtype == torch.float32
    assert torch.isfinite(scores).all() and scores.abs().max() <= 1.0  # cosine similarities
    with pytest.raises(SpfError, match="one prompt per image"):
        tiny_hps.score(_images(), PROMPTS[:2])


def test_score_equals_hpsv2s_own_scorer(tiny_hps, tmp_path, monkeypatch):
    """hpsv2's img_score.score, run on a model hpsv2 builds itself from the tiny arch.json
    (registered through hpsv2's add_model_config) with the tiny checkpoint as ``cp``."""
    from hpsv2 import img_score
    from hpsv2.src.open_clip import add_model_config

    folder = registry.tiny_folder("hps")
    arch = tmp_path / "hps-tiny-reference.json"
    shutil.copyfile(folder / "arch.json", arch)
    add_model_config(arch)
    # The same arguments as hpsv2's initialize_model, except the architecture and no pretrained tag.
    model, _, preprocess_val = img_score.create_model_and_transforms(
        arch.stem, None, precision="amp", device="cpu", jit=False, force_quick_gelu=False,
        force_custom_text=False, force_patch_dropout=False, force_image_size=None,
        pretrained_image=False, image_mean=None, image_std=None, light_augmentation=True,
        aug_cfg={}, output_dict=True, with_score_predictor=False, with_region_predictor=False,
    )
    monkeypatch.setattr(img_score, "model_dict", {"model": model, "preprocess_val": preprocess_val})
    monkeypatch.setattr(img_score, "device", "cpu")
    monkeypatch.setattr(img_score, "root_path", str(tmp_path / "hpsv2-root"))
    checkpoint = str(folder / "HPS_v2.1_compressed.pt")
    reference = [float(img_score.score([image], prompt, cp=checkpoint)[0]) for image, prompt in zip(_images(), PROMPTS)]
    ours = tiny_hps.score(_images(), PROMPTS)
    assert torch.allclose(ours, torch.tensor(reference), atol=1e-5, rtol=0)
    assert len(set(round(r, 4) for r in reference)) == 3  # the pairs really differ


def test_tiny_hps_build_is_byte_identical(tmp_path):
    hps_net.write_tiny(tmp_path / "a")
    hps_net.write_tiny(tmp_path / "b")
    first = _hashes(tmp_path / "a")
    assert set(first) == {"arch.json", "HPS_v2.1_compressed.pt"}
    assert first == _hashes(tmp_path / "b")


def test_tiny_checkpoint_has_hps_format(tiny_hps):
    raw = torch.load(registry.tiny_folder("hps") / "HPS_v2.1_compressed.pt", map_location="cpu", weights_only=True)
    assert set(raw) == {"state_dict"} and "visual.proj" in raw["state_dict"]


def test_random_hps_is_vit_h_14_on_meta():
    bundle = zoo.load("hps", source="random", device="meta")
    assert sum(p.numel() for p in bundle.model.parameters()) == 986_109_441
    assert bundle.model.visual.image_size == (224, 224)


def test_pretrained_hps_missing_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsMissingError, match=r"HPS_v2\.1_compressed\.pt \(get it from hub xswu/HPSv2"):
        zoo.load("hps", source="pretrained")


@pytest.fixture()
def weights_dir(tiny_hps, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    shutil.copytree(registry.tiny_folder("hps"), tmp_path / "hps")
    return tmp_path / "hps"


def test_pretrained_layout_loads_and_scores_the_same(weights_dir, tiny_hps):
    bundle = zoo.load("hps", source="pretrained")
    assert torch.equal(bundle.score(_images(), PROMPTS), tiny_hps.score(_images(), PROMPTS))


def test_truncated_hps_checkpoint_is_reported(weights_dir):
    path = weights_dir / "HPS_v2.1_compressed.pt"
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(WeightsCorruptError, match="is truncated"):
        zoo.load("hps", source="pretrained")


def test_checkpoint_without_state_dict_entry_is_reported(weights_dir):
    torch.save({"model": {}}, weights_dir / "HPS_v2.1_compressed.pt")
    with pytest.raises(WeightsCorruptError, match="has no 'state_dict' entry"):
        zoo.load("hps", source="pretrained")
