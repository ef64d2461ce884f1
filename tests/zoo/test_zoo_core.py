"""The zoo's registry, the offline CLIP tokenizer and the SD1.5 / CLIP networks."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch

from spf_bench import zoo
from spf_bench.cli import main as spf_bench_main
from spf_bench.core.errors import SpfError, WeightsCorruptError, WeightsMissingError
from spf_bench.zoo import registry

CAPTIONS = [
    "a photo of a young woman, long brown hair, in a park",
    "wearing round glasses",
    "a portrait of an elderly man with a grey beard, smiling, studio lighting, 85mm lens",
    "A CLOSE-UP Portrait Of A Teenage Girl, Freckles, Red Hair",
    "pencil drawing style",
    "a man in his thirties wearing a navy suit and a red tie, city street at night, bokeh",
    "Café au lait skin, naïve expression, façade behind her",
    "東京の街で微笑む女性の写真",
    "a woman wearing a hijab, soft window light",
    "portrait of a child with curly blond hair — laughing!",
    "un homme âgé avec des lunettes rondes",
    "ein Porträt einer Frau mit Sommersprossen, Straße",
    "a smiling grandmother 👵 with silver hair",
    "a soldier's portrait, 1940s, sepia tone",
    "emoji test 😀😃😄 portrait",
    "a photo of a person, 50mm, f/1.8, iso 100",
    "tabs\tand\nnewlines   in   caption",
    "UPPER lower MiXeD",
    "numbers 1234567890 and symbols #@$%^*()",
    "wearing a red baseball cap",
    "with a mohawk hairstyle",
    "cartoon style, cel shading",
    "oil painting in the style of the old masters",
    "with a tattoo on the neck",
    "wearing pearl earrings",
    "with heavy eye makeup",
    "anime style",
    "wearing a leather jacket",
    "with a surprised expression",
    "holding a cup of coffee",
    "a woman, bob haircut, beach at sunset, golden hour",
    "a man with dreadlocks, graffiti wall, overcast",
    "a bald man with a goatee, library background",
    "a young boy, buzz cut, school uniform, classroom",
    "an old woman, braided grey hair, kitchen, warm light",
    "a middle-aged man, receding hairline, office, fluorescent light",
    "a girl with pigtails, playground, bright daylight",
    "a woman with a pixie cut, rooftop, blue hour",
    "a man with a ponytail, forest, dappled light",
    "a teenager with dyed green hair, concert, stage lights",
    # Compatibility characters (the "ﬁ" ligature, fullwidth letters) are left out on purpose:
    # open_clip folds them through ftfy, transformers' CLIPTokenizer does not, in any folder.
    "ß ẞ straße and ñandú",
    "Ελληνικά γράμματα και Кириллица",
    "mixed-script 名前 name اسم",
    "",
    "   ",
    "a " * 60 + "very long caption that goes past the limit",
    ", ".join(["wearing a hat"] * 30),
    "photo " * 120,
    "an extremely detailed portrait of a woman with long flowing auburn hair, emerald green eyes, "
    "light freckles across her nose, wearing a cream knitted sweater and a silver pendant necklace, "
    "standing in a misty pine forest at dawn with soft diffused light and shallow depth of field",
    "x" * 300,
]


def test_offline_tokenizer_matches_open_clip(tiny_pipe):
    import open_clip

    reference = open_clip.get_tokenizer("ViT-L-14")
    assert len(CAPTIONS) >= 50
    for caption in CAPTIONS:
        ours = tiny_pipe.tokenizer(caption, padding="max_length", truncation=True, max_length=77).input_ids
        theirs = reference([caption])[0].tolist()
        end = theirs.index(49407) + 1  # open_clip pads with 0, SD's tokenizer with EOS: compare up to EOS
        assert ours[:end] == theirs[:end], caption
        assert len(ours) == 77


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", ["sd15", "clip"])
def test_tiny_build_is_byte_identical(name, tmp_path):
    network = registry.get_network(name)
    network.write_tiny(tmp_path / "a")
    network.write_tiny(tmp_path / "b")
    first, second = _tree_hashes(tmp_path / "a"), _tree_hashes(tmp_path / "b")
    assert first and first == second


def test_tiny_sd15_shapes(tiny_pipe):
    tokens = tiny_pipe.tokenizer(["a photo of a woman"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        text = tiny_pipe.text_encoder(tokens)[0]
        latents = torch.randn(1, 4, 8, 8)
        eps = tiny_pipe.unet(latents, 10, encoder_hidden_states=text).sample
        image = tiny_pipe.vae.decode(latents / tiny_pipe.vae.config.scaling_factor).sample
    assert text.shape == (1, 77, 32)
    assert eps.shape == (1, 4, 8, 8)
    assert image.shape == (1, 3, 64, 64)


def test_tiny_clip_shapes():
    from PIL import Image

    bundle = zoo.load("clip", source="tiny")
    pixels = bundle.preprocess(Image.new("RGB", (100, 60), "red")).unsqueeze(0)
    with torch.no_grad():
        image = bundle.encode_image(pixels)
        text = bundle.encode_text(["a red square", "a portrait"])
    assert pixels.shape == (1, 3, 224, 224)
    assert image.shape == (1, 32) and text.shape == (2, 32)


def test_random_sizes_match_real_checkpoints():
    unet = zoo.load("sd15", source="random", device="meta").unet
    assert sum(p.numel() for p in unet.parameters()) == 859_520_964
    clip = zoo.load("clip", source="random", device="meta").model
    assert sum(p.numel() for p in clip.parameters()) == 427_616_513


@pytest.mark.parametrize("name", sorted(registry.known_networks()))
def test_pretrained_missing_names_every_file(name, tmp_path, monkeypatch):
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsMissingError) as info:
        zoo.load(name, source="pretrained")
    message = str(info.value)
    for f in registry.get_network(name).files:
        assert str(tmp_path / name / f.path) in message
    assert "\n" not in message


def test_truncated_checkpoint_is_reported(tmp_path, monkeypatch):
    tiny = registry.ensure_tiny(registry.get_network("clip"))
    target = tmp_path / "clip"
    target.mkdir()
    (target / "open_clip_config.json").write_bytes((tiny / "open_clip_config.json").read_bytes())
    data = (tiny / "open_clip_model.safetensors").read_bytes()
    (target / "open_clip_model.safetensors").write_bytes(data[: len(data) // 2])
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsCorruptError, match="truncated or not a valid checkpoint"):
        zoo.load("clip", source="pretrained")


def test_wrong_checkpoint_is_reported(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    tiny = registry.ensure_tiny(registry.get_network("clip"))
    target = tmp_path / "clip"
    target.mkdir()
    (target / "open_clip_config.json").write_bytes((tiny / "open_clip_config.json").read_bytes())
    save_file({"unrelated.weight": torch.zeros(3)}, str(target / "open_clip_model.safetensors"))
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsCorruptError, match="does not fit"):
        zoo.load("clip", source="pretrained")


def test_unknown_names_are_one_sentence():
    with pytest.raises(SpfError, match="Unknown network 'nope'.*sd15"):
        zoo.load("nope")
    with pytest.raises(SpfError, match="Unknown weight source 'hub'"):
        zoo.load("sd15", source="hub")


def test_unreadable_cache_folder(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SPF_CACHE", str(blocker / "cache"))
    with pytest.raises(SpfError, match="cache folder"):
        zoo.load("clip", source="tiny")


def test_weights_cli_check_and_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    assert spf_bench_main(["weights", "--weights", "pretrained", "--network", "clip", "--check"]) == 1
    out = capsys.readouterr().out
    assert "open_clip_model.safetensors" in out and "missing" in out
    assert spf_bench_main(["weights", "--network", "clip", "--check"]) == 0
    assert "present" in capsys.readouterr().out
    assert spf_bench_main(["weights", "--weights", "moon"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "moon" in err


def test_fetch_without_network_fails_in_one_sentence(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setattr("spf_bench.zoo.fetch._reachable", lambda host, timeout=5.0: False)
    assert spf_bench_main(["weights", "--weights", "pretrained", "--network", "clip", "--fetch"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach" in err and err.count("\n") == 1
    assert not any(tmp_path.rglob("*.safetensors"))


def test_lock_file_detects_changed_weights(tmp_path, monkeypatch):
    import json

    tiny = registry.ensure_tiny(registry.get_network("clip"))
    target = tmp_path / "clip"
    target.mkdir()
    for f in ("open_clip_config.json", "open_clip_model.safetensors"):
        (target / f).write_bytes((tiny / f).read_bytes())
    (tmp_path / registry.LOCK_FILE).write_text(json.dumps({"clip": {"open_clip_model.safetensors": "0" * 64}}))
    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(SpfError, match="does not match the sha256"):
        zoo.load("clip", source="pretrained")
