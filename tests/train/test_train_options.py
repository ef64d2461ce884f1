"""spf-train's options: one documented source for --help, the reference page and config files;
stage 2 never chooses its starting weights silently."""

from __future__ import annotations

import argparse
import typing
from pathlib import Path

import pytest

from spf_bench.core.errors import SpfError
from spf_train.cli import COMMAND_MODULES, main
from spf_train.config import LrScheduler, Stage2Config, add_config_arguments, from_dict, resolve_config
from spf_train.config_options import field_docs, option_docs
from spf_train.options_reference import COMMANDS, render_reference

TRAINING_COMMANDS = ("stage1", "stage2", "lora", "adalora", "tokencompose")
ROOT = Path(__file__).resolve().parents[2]


def _subparser(command: str) -> argparse.ArgumentParser:
    from spf_bench.core.cli import build_parser

    parser = build_parser("spf-train", "spf_train", COMMAND_MODULES, "")
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


# --------------------------------------------------------------------------- stage 2's start

def test_stage2_without_init_from_names_both_choices_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["stage2", "--data-dir", str(tmp_path / "data"), "--output-dir", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "--init-from" in err and "stage-1 output folder" in err and "'original'" in err and "Tab. 5" in err
    assert not out.exists()


def test_init_from_has_no_silent_default_and_internal_callers_set_it():
    assert Stage2Config().init_from == ""
    from spf_bench.lab.experiment import LabConfig
    from spf_bench.lab.methods import LAB_METHODS, training_config
    from spf_bench.methods.registry import known_methods

    for name, method in LAB_METHODS.items():
        recipe = known_methods()[method.suite].recipe
        if recipe is not None and recipe.trainer == "stage2":  # None: the method trains nothing (Magnet)
            start = Path("s1") if recipe.init_from else None
            config = training_config(name, LabConfig(), Path("d"), start, Path("b"), Path("c"))
            assert config["init_from"] == ("s1" if recipe.init_from else "original"), name


# --------------------------------------------------------------------------- every flag explains itself

@pytest.mark.parametrize("command", TRAINING_COMMANDS)
def test_every_training_option_has_a_sentence_its_default_and_its_values(command):
    parser = _subparser(command)
    config_cls = COMMANDS[command]
    documented = {o.key: o for o in option_docs(config_cls)}
    assert all(o.summary.endswith(".") and len(o.summary.split()) >= 3 for o in documented.values()), \
        [k for k, o in documented.items() if not o.summary.endswith(".") or len(o.summary.split()) < 3]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        flags = ", ".join(action.option_strings)
        assert action.help and action.help.strip().endswith("."), f"{command} {flags} has no sentence"
        assert not any(f.startswith("--no-no-") for f in action.option_strings), flags
        key = action.dest[len("cfg__"):].replace("__", ".") if action.dest.startswith("cfg__") else None
        if key in documented and action.option_strings[0] == documented[key].flags[0]:
            assert "Default: " in action.help, flags
            if documented[key].choices:
                assert "One of: " + ", ".join(documented[key].choices) in action.help, flags
    assert {a.dest for a in parser._actions} >= {"cfg__" + k.replace(".", "__") for k in documented}


def test_help_says_what_base_model_takes(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["stage1", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "fine-tune: tiny, random, pretrained, synth, or a diffusers pipeline folder. Default: tiny." in text
    assert "--no-attn" not in text  # stage 1 has no stage-2 switches
    assert "One of: no, fp16, bf16." in text


def test_every_config_field_is_documented_in_the_config_class_itself():
    for cls in COMMANDS.values():
        docs = field_docs(cls)
        missing = [o.key for o in option_docs(cls) if not o.doc]
        assert not missing, f"{cls.__name__}: {missing}"
        assert docs  # read from the source, not invented here


def test_negated_switches_read_naturally_and_override_a_config_file(tmp_path):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Stage2Config)
    (tmp_path / "c.yaml").write_text("no_attn: true\ninit_from: original\n")
    assert resolve_config(Stage2Config, parser.parse_args(["--no-sfcm"])).no_sfcm is True
    assert resolve_config(Stage2Config, parser.parse_args(["--config", str(tmp_path / "c.yaml")])).no_attn is True
    assert resolve_config(Stage2Config, parser.parse_args(["--config", str(tmp_path / "c.yaml"), "--with-attn"])).no_attn is False
    assert resolve_config(Stage2Config, parser.parse_args(["--no-direct-clip"])).direct_clip is False


def test_allowed_values_are_checked_in_flags_and_in_config_files(capsys):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Stage2Config)
    with pytest.raises(SystemExit):
        parser.parse_args(["--mixed-precision", "fp8"])
    assert "invalid choice: 'fp8'" in capsys.readouterr().err
    with pytest.raises(SpfError, match="Option 'trainable' must be one of xattn, full, lora-xattn, adapter-xattn, not 'all'"):
        from_dict(Stage2Config, {"trainable": "all"})


def test_scheduler_names_are_the_ones_diffusers_knows():
    from diffusers.optimization import SchedulerType

    assert set(typing.get_args(LrScheduler)) == {s.value for s in SchedulerType}


def test_stage2_choices_are_the_config_types():
    from spf_train.stage2 import STAGE2_CHOICES
    from spf_train.trainable import STAGE2_TRAINABLE

    assert STAGE2_CHOICES["mask_resize"] == ("bilinear", "area", "nearest")
    assert STAGE2_CHOICES["trainable"] == STAGE2_TRAINABLE == ("xattn", "full", "lora-xattn", "adapter-xattn")


def test_the_options_reference_page_is_the_generated_one():
    page = (ROOT / "docs" / "training-options.md").read_text()
    assert page == render_reference(), "docs/training-options.md is stale: python -m spf_train.options_reference > docs/training-options.md"
    for cls in COMMANDS.values():
        for option in option_docs(cls):
            assert f"`{option.key}`" in page
