"""The MPS network of the zoo: tiny through the real loader, conversion of the released pickle,
real size, pretrained errors."""

from __future__ import annotations

import hashlib
import shutil
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spf_bench import zoo
from spf_bench.core.errors import SpfError, WeightsCorruptError, WeightsMissingError
from spf_bench.zoo import registry
from spf_bench.zoo.networks import mps as mps_net

PROMPTS = ["a portrait of a woman with red hair", "an old man wearing glasses, soft light"]


def _images() -> list[Image.Image]:
    rng = np.random.RandomState(3)
    return [Image.fromarray((rng.rand(h, w, 3) * 255).astype(np.uint8)) for h, w in ((64, 64), (48, 96))]


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_mps():
    return zoo.load("mps", source="tiny")


def test_tiny_mps_scores_one_value_per_pair(tiny_mps):
    assert isinstance(tiny_mps, mps_net.MpsBundle) and not tiny_mps.model.training
    scores = tiny_mps.score(_images(), PROMPTS)
    assert scores.shape == (2,) and torch.isfinite(scores).all()
    # The score is logit_scale.exp() times a cosine similarity.
    assert scores.abs().max() <= tiny_mps.model.model.logit_scale.exp() + 1e-4
    pixels = tiny_mps.image_processor(_images(), return_tensors="pt")["pixel_values"]
    assert pixels.shape == (2, 3, 224, 224)
    assert tiny_mps.model.image_tokens(pixels).shape == (2, 257, 32)  # 16x16 patches + class token


def test_prompt_changes_the_score(tiny_mps):
    images = _images()[:1] * 2
    scores = tiny_mps.score(images, PROMPTS)
    assert not torch.allclose(scores[0], scores[1])


def test_bad_score_arguments_are_one_sentence(tiny_mps):
    with pytest.raises(SpfError, match="Unknown MPS condition 'beauty'"):
        tiny_mps.score(_images(), PROMPTS, condition="beauty")
    with pytest.raises(SpfError, match="one prompt per image"):
        tiny_mps.score(_images(), PROMPTS[:1])


def test_tiny_mps_build_is_byte_identical(tmp_path):
    mps_net.write_tiny(tmp_path / "a")
    mps_net.write_tiny(tmp_path / "b")
    first = _hashes(tmp_path / "a")
    assert {"mps_overall.safetensors", "arch.json", "clip-h/config.json", "clip-h/vocab.json"} <= set(first)
    assert first == _hashes(tmp_path / "b")


def test_random_mps_is_clip_h_plus_condition_transformer_on_meta():
    bundle = zoo.load("mps", source="random", device="meta")
    cross = sum(p.numel() for p in bundle.model.cross_model.parameters())
    clip = sum(p.numel() for p in bundle.model.model.parameters())
    assert clip == 986_109_441  # the same count as open_clip's ViT-H-14
    assert cross == 118_497_280


def test_pretrained_mps_missing_names_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsMissingError) as info:
        zoo.load("mps", source="pretrained")
    message = str(info.value)
    assert "mps_overall.safetensors" in message and "--trust-pickle" in message
    assert "clip-h/config.json" in message and "laion/CLIP-ViT-H-14-laion2B-s32B-b79K" in message


@pytest.fixture()
def weights_dir(tiny_mps, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path / "weights"))
    shutil.copytree(registry.tiny_folder("mps"), tmp_path / "weights" / "mps")
    return tmp_path / "weights" / "mps"


def test_truncated_mps_weights_are_reported(weights_dir):
    path = weights_dir / "mps_overall.safetensors"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(WeightsCorruptError, match="mps_overall.safetensors is truncated"):
        zoo.load("mps", source="pretrained")


# --------------------------------------------------------------------------- conversion

# Where the authors' training code defines each class of the released pickle.
_RELEASE_CLASSES = {
    "MpsModel": ("trainer.models.clip_model", "CLIPModel"),
    "CLIPModel": ("trainer.models.clip_model", "XCLIPModel"),
    "ConditionTransformer": ("trainer.models.cross_modeling", "Cross_model"),
    "Residual": ("trainer.models.cross_modeling", "Residual"),
    "ConditionCrossAttention": ("trainer.models.cross_modeling", "CrossAttention"),
    "ParallelSelfAttention": ("trainer.models.cross_modeling", "ParallelTransformerBlock"),
    "LayerNormNoBias": ("trainer.models.cross_modeling", "LayerNorm"),
    "RotaryFrequencies": ("trainer.models.cross_modeling", "RotaryEmbedding"),
    "SwiGLU": ("trainer.models.cross_modeling", "SwiGLU"),
}


def _pickle_like_the_release(model: torch.nn.Module, path: Path) -> None:
    """Save ``model`` as a whole object whose classes carry the release's module paths, with
    the position ids stored as the transformers of the release did."""
    names = ["trainer", "trainer.models", "trainer.models.clip_model", "trainer.models.cross_modeling"]
    fake = {name: types.ModuleType(name) for name in names}
    stand_ins = {}
    for ours, (module, name) in _RELEASE_CLASSES.items():
        base = next(type(m) for m in model.modules() if type(m).__name__ == ours)
        stand_ins[base] = type(name, (base,), {"__module__": module, "__qualname__": name})
        setattr(fake[module], name, stand_ins[base])
    for module in model.modules():
        module.__class__ = stand_ins.get(type(module), type(module))
    for embeddings in (model.model.text_model.embeddings, model.model.vision_model.embeddings):
        embeddings._non_persistent_buffers_set.discard("position_ids")
    sys.modules.update(fake)
    try:
        torch.save(model, path)
    finally:
        for name in names:
            sys.modules.pop(name, None)
    with zipfile.ZipFile(path) as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    assert b"trainer.models.cross_modeling" in pickled and b"ParallelTransformerBlock" in pickled


@pytest.fixture()
def released_file(weights_dir, tmp_path) -> Path:
    model = mps_net.load_folder(weights_dir, torch.device("cpu"), torch.float32).model
    path = tmp_path / "MPS_overall_checkpoint.pth"
    _pickle_like_the_release(model, path)
    return path


def test_conversion_round_trip(released_file, weights_dir, tiny_mps):
    (weights_dir / "mps_overall.safetensors").unlink()
    written = mps_net.convert_mps_checkpoint(released_file, weights_dir, trust_pickle=True)
    assert written == weights_dir / "mps_overall.safetensors"
    assert "trainer" not in sys.modules  # the training code was never needed
    from safetensors import safe_open

    with safe_open(str(written), framework="pt") as handle:
        keys = set(handle.keys())
    assert "cross_model.layers.0.1.fn.rotary_emb.inv_freq" in keys
    assert not any(k.endswith("position_ids") for k in keys)
    bundle = zoo.load("mps", source="pretrained")
    assert torch.equal(bundle.score(_images(), PROMPTS), tiny_mps.score(_images(), PROMPTS))


def test_conversion_refuses_without_trust(released_file, tmp_path):
    out = tmp_path / "out.safetensors"
    with pytest.raises(SpfError) as info:
        mps_net.convert_mps_checkpoint(released_file, out)
    assert "--trust-pickle" in str(info.value) and "\n" not in str(info.value)
    assert not out.exists()


def test_conversion_reports_truncated_and_foreign_files(released_file, tmp_path):
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(released_file.read_bytes()[:4000])
    with pytest.raises(WeightsCorruptError, match="truncated or not a pickled PyTorch model"):
        mps_net.convert_mps_checkpoint(truncated, tmp_path / "a.safetensors", trust_pickle=True)
    foreign = tmp_path / "foreign.pth"
    torch.save(torch.nn.Linear(2, 2), foreign)
    with pytest.raises(WeightsCorruptError, match="holds no MPS model"):
        mps_net.convert_mps_checkpoint(foreign, tmp_path / "b.safetensors", trust_pickle=True)
    assert not list(tmp_path.glob("*.safetensors"))
