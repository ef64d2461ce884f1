"""``spf-train`` end to end on tiny: a config file plus flags, and the SFCM pictures."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from spf_train.cli import main
from spf_train.data import make_training_set

pytestmark = pytest.mark.usefixtures("single_thread")


def test_stage1_command_takes_a_config_file_and_flags_and_saves_the_resolved_config(tiny_pipe, tmp_path, capsys):
    data = make_training_set(tiny_pipe, [("a woman, long hair", "wearing glasses")], tmp_path / "data", steps=2)
    (tmp_path / "run.yaml").write_text(f"data_dir: {data}\ntrain_batch_size: 1\nlearning_rate: 0.0001\nmax_steps: 5\ncheckpoint_every: 1\n")
    out = tmp_path / "out"
    code = main(["stage1", "--config", str(tmp_path / "run.yaml"), "--output-dir", str(out), "--max-steps", "1", "--device", "cpu"])
    assert code == 0
    saved = json.loads((out / "spf_config.json").read_text())
    assert (saved["max_steps"], saved["learning_rate"], saved["config_class"]) == (1, 0.0001, "Stage1Config")
    assert (out / "model_index.json").is_file() and (out / "unet").is_dir()
    assert (out / "checkpoints" / "step-1" / "spf_config.json").is_file()
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert log[0]["step"] == 1 and "diff" in log[0] and "loss" in log[0]


def test_user_errors_are_one_sentence_and_exit_code_two(tmp_path, capsys):
    assert main(["stage2", "--data-dir", str(tmp_path / "nowhere"), "--output-dir", str(tmp_path / "o"), "--init-from", "original"]) == 2
    err = capsys.readouterr().err
    assert "has no metadata.jsonl" in err and "Traceback" not in err


def test_sfcm_command_writes_the_maps_as_pngs(tmp_path):
    out = tmp_path / "maps"
    code = main(["sfcm", "--checkpoint", "tiny", "--prompt", "a photo of a young woman, long brown hair, in a park",
                 "--target", "wearing round glasses", "--out", str(out), "--steps", "2"])
    assert code == 0
    summary = json.loads((out / "maps.json").read_text())
    assert summary["phrases"] == ["a photo of a young woman", "long brown hair", "in a park"]
    assert len(summary["relevance_weights"]) == 3
    names = sorted(p.name for p in out.glob("*.png"))
    assert {"image.png", "soft_map.png", "sfcm.png"} <= set(names)
    assert sum(n.startswith("phrase_") for n in names) == 3
    with Image.open(out / "sfcm.png") as image:
        assert image.size == (64, 64)
