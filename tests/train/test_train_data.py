"""Training sets (metadata.jsonl folders), configs and the latent cache."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest
import torch
from PIL import Image

from spf_bench.core.errors import SpfError
from spf_train.config import (
    Stage1Config,
    Stage2Config,
    add_config_arguments,
    load_saved_config,
    resolve_config,
    save_config,
)
from spf_train.data import PortraitDataset, batch_indices, make_training_set, read_rows
from spf_train.loop import TrainingLoop
from spf_train.stage1 import Stage1Task
from support.training import fresh_copy

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def good_set(tiny_pipe, tmp_path_factory):
    return make_training_set(tiny_pipe, [("a woman, long hair", "wearing glasses", "accessories"),
                                         ("a man, short hair", "in a hat", "clothing")],
                             tmp_path_factory.mktemp("data-set"), steps=2)


def _with_lines(good_set, tmp_path, extra_lines, files=()):
    folder = tmp_path / "set"
    shutil.copytree(good_set, folder)
    for name, data in files:
        (folder / name).write_bytes(data)
    with open(folder / "metadata.jsonl", "a") as handle:
        handle.write("\n".join(json.dumps(line) for line in extra_lines) + "\n")
    return folder


def test_make_training_set_writes_a_valid_image_folder(good_set):
    rows = read_rows(good_set)
    assert [r.category for r in rows] == ["accessories", "clothing"]
    assert rows[0].full_caption == "a woman, long hair, wearing glasses"
    with Image.open(rows[0].image_path) as image:
        assert image.size == (64, 64)
    item = PortraitDataset(good_set, 64)[1]
    assert item["pixels"].shape == (3, 64, 64) and -1.0 <= float(item["pixels"].min()) <= float(item["pixels"].max()) <= 1.0


@pytest.mark.parametrize("line, files, message", [
    ({"file_name": "missing.png", "base_caption": "a", "target_caption": "b", "category": "c"}, (), r"line 3 \(missing.png\).*does not exist"),
    ({"file_name": "bad.png", "base_caption": "a", "target_caption": "b", "category": "c"}, (("bad.png", b"not a png"),), r"line 3 \(bad.png\).*cannot be read"),
    ({"file_name": "00000.png", "base_caption": "a", "category": "c"}, (), r"line 3 lacks the field\(s\) target_caption"),
    ({"file_name": "00001.png", "base_caption": "  ", "target_caption": "b", "category": "c"}, (), r"line 3 \(00001.png\) has an empty base_caption"),
])
def test_bad_rows_are_reported_with_line_and_file(good_set, tmp_path, line, files, message):
    folder = _with_lines(good_set, tmp_path, [line], files)
    with pytest.raises(SpfError, match=message):
        read_rows(folder)


def test_skip_bad_drops_bad_rows_and_reports_how_many(good_set, tmp_path):
    bad = [{"file_name": "missing.png", "base_caption": "a", "target_caption": "b", "category": "c"},
           {"file_name": "00000.png", "base_caption": "", "target_caption": "b", "category": "c"}]
    folder = _with_lines(good_set, tmp_path, bad)
    messages = []
    rows = read_rows(folder, skip_bad=True, report=messages.append)
    assert len(rows) == 2
    assert messages and messages[0].startswith("Skipped 2 bad row(s)") and "line 3" in messages[0] and "line 4" in messages[0]


def test_batches_are_a_pure_function_of_step_and_seed():
    first_epoch = [batch_indices(5, 1, step, seed=1)[0] for step in range(5)]
    assert sorted(first_epoch) == list(range(5))  # an epoch visits every item once
    assert batch_indices(5, 2, 7, seed=1) == batch_indices(5, 2, 7, seed=1)


def test_config_file_yaml_and_toml_with_flag_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text("learning_rate: 0.001\nno_sfcm: true\nweights:\n  attn: 0.5\n")
    (tmp_path / "c.toml").write_text('learning_rate = 0.002\ntrainable = "full"\n[weights]\nre = 0.3\n')
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Stage2Config)
    from_yaml = resolve_config(Stage2Config, parser.parse_args(["--config", str(tmp_path / "c.yaml"), "--weights.unet", "0.7", "--max-steps", "3"]))
    assert (from_yaml.learning_rate, from_yaml.no_sfcm, from_yaml.max_steps) == (0.001, True, 3)
    assert (from_yaml.weights.attn, from_yaml.weights.unet, from_yaml.weights.re) == (0.5, 0.7, 0.6)
    from_toml = resolve_config(Stage2Config, parser.parse_args(["--config", str(tmp_path / "c.toml"), "--learning-rate", "0.1"]))
    assert (from_toml.learning_rate, from_toml.trainable, from_toml.weights.re) == (0.1, "full", 0.3)
    save_config(from_toml, tmp_path / "out")
    assert load_saved_config(Stage2Config, tmp_path / "out") == from_toml
    (tmp_path / "bad.yaml").write_text("learning_rat: 1\n")
    with pytest.raises(SpfError, match="Unknown option.*learning_rat"):
        resolve_config(Stage2Config, parser.parse_args(["--config", str(tmp_path / "bad.yaml")]))


def test_latent_cache_trains_exactly_like_the_encoder(tiny_pipe, good_set, tmp_path):
    def trained_unet(cache: bool):
        config = Stage1Config(output_dir=str(tmp_path / f"cache-{cache}"), train_batch_size=2, max_steps=2,
                              checkpoint_every=0, learning_rate=1e-3, latent_cache=cache, device="cpu")
        task = Stage1Task(config, pipe=fresh_copy(tiny_pipe), dataset=PortraitDataset(good_set, 64), report=lambda m: None)
        loop = TrainingLoop(task, report=lambda m: None)
        for _ in range(2):
            loop.train_step()
        return task.unet.state_dict()

    plain, cached = trained_unet(False), trained_unet(True)
    assert list((tmp_path / "cache-True" / "latent_cache").glob("*.safetensors"))
    # the cache holds the encoder's Gaussian, so the same generator draws the same latents
    assert all(torch.allclose(plain[k], cached[k], atol=1e-6) for k in plain)
