"""Every command's --device defaults the same way, and quick checkpoints train on the run's device."""

from __future__ import annotations

import argparse

import pytest
import torch

from spf_bench.core.cli import DEVICE_HELP
from spf_bench.core.errors import SpfError


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                yield from ((f"{name} {n}", s) for n, s in _subparsers(sub))


def test_every_device_option_defaults_alike():
    from spf_bench.cli import COMMAND_MODULES
    from spf_bench.core.cli import build_parser

    parser = build_parser("spf-bench", "spf_bench", COMMAND_MODULES, "")
    found = {}
    for name, sub in _subparsers(parser):
        for action in sub._actions:
            if "--device" in action.option_strings:
                found[name] = (action.default, action.help)
    assert {"run", "evaluate", "triples build"} <= set(found)
    assert set(found.values()) == {(None, DEVICE_HELP)}


def test_quick_checkpoints_train_on_the_runs_device(monkeypatch, tmp_path):
    from spf_bench.methods import training

    seen = {}

    def fake_train(recipe, config, out, report):
        seen[recipe.trainer] = config["device"]
        out.mkdir(parents=True)
        (out / training._DONE).write_text("x\n")

    monkeypatch.setattr(training, "_train", fake_train)
    monkeypatch.setattr(training, "training_data", lambda weights, quick: tmp_path)
    monkeypatch.setattr(training, "trained_root", lambda: tmp_path / "trained")
    cpu = training.checkpoint_for("ours", "tiny", report=lambda *_: None)
    assert seen == {"stage1": "cpu", "stage2": "cpu"}
    seen.clear()
    gpu = training.checkpoint_for("ours", "tiny", report=lambda *_: None, device="cuda:1")
    assert seen == {"stage1": "cuda:1", "stage2": "cuda:1"}  # what it starts from, too
    assert gpu != cpu  # a checkpoint trained elsewhere is cached apart


def test_spf_train_refuses_a_device_it_cannot_use():
    from spf_train.accelerator import _select_gpu

    _select_gpu("")
    _select_gpu("cpu")
    with pytest.raises(SpfError, match="not 'tpu-ish'"):
        _select_gpu("tpu-ish")
    if not torch.cuda.is_available():
        with pytest.raises(SpfError, match="no CUDA GPU"):
            _select_gpu("cuda:0")
