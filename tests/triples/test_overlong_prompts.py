"""Captions longer than CLIP's 77 tokens are refused by name, never cut silently: in a user's
triple file (``spf-bench triples build --from``) and in a training set (``spf-train``)."""

from __future__ import annotations

import json

import pytest

from spf_bench.cli import main as bench_main
from spf_train.cli import main as train_main
from spf_train.data import make_training_set

pytestmark = pytest.mark.usefixtures("single_thread")

LONG_TARGET = "wearing " + " and ".join(f"a {c} scarf" for c in ("red", "green", "blue", "yellow", "black", "white",
                                                                   "purple", "orange", "grey", "brown", "pink", "golden",
                                                                   "silver", "navy", "olive", "teal", "amber", "ivory",
                                                                   "coral", "cream", "mint", "plum", "rust", "sand"))


def test_long_caption_is_really_over_the_limit(tiny_pipe):
    def tokens(text):
        return len(tiny_pipe.tokenizer(text, truncation=False).input_ids)

    assert tokens("a woman, " + LONG_TARGET) > 77
    assert tokens("a woman, wearing a red scarf") <= 77


def test_triples_build_from_refuses_the_overlong_triple_by_name(tmp_path, capsys):
    source = tmp_path / "mine.jsonl"
    rows = [
        {"id": "short-one", "category": "clothing", "base_caption": "a man", "target_caption": "wearing a hat"},
        {"id": "too-long", "category": "clothing", "base_caption": "a woman", "target_caption": LONG_TARGET},
    ]
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "set"
    code = bench_main(["triples", "build", "--from", str(source), "--out", str(out), "--steps", "1", "--size", "32",
                       "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "too-long" in lines[0] and "short-one" not in lines[0] and "77" in lines[0]
    assert "Traceback" not in err
    assert not list(out.glob("originals/*.png"))  # refused before drawing anything


def test_training_on_an_overlong_caption_is_refused_with_file_and_line(tiny_pipe, tmp_path, capsys):
    data = make_training_set(tiny_pipe, [("a man", "wearing a hat"), ("a woman", "wearing a red scarf")], tmp_path / "data",
                             steps=1)
    meta = data / "metadata.jsonl"
    lines = meta.read_text().splitlines()
    second = json.loads(lines[1])
    second["target_caption"] = LONG_TARGET
    lines[1] = json.dumps(second)
    meta.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    code = train_main(["stage1", "--data-dir", str(data), "--output-dir", str(out), "--max-steps", "1", "--device", "cpu",
                       "--base-model", "tiny"])
    err = capsys.readouterr().err
    assert code == 2
    assert "metadata.jsonl line 2" in err and second["file_name"] in err and "77" in err
    assert "Traceback" not in err
    assert not (out / "unet").exists() and not (out / "checkpoints").exists()  # no step was taken
