"""The pollution lab: its sets, prompts and statistics, its methods table, and a tiny lab
trained end to end on the shipped world (checkpoints, rates, metrics, reuse)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spf_bench.metrics import METRIC_ORDER
from spf_bench.zoo import synth_source

from spf_bench.world.captions import parse_caption
from spf_bench.lab.experiment import verdict, wilson
from spf_bench.world.sets import Correlation, base_prompts, write_set


def _rows(folder):
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


def test_correlated_set_carries_the_correlation_and_the_control_does_not(tmp_path):
    corr = Correlation()
    polluted = _rows(write_set(tmp_path / "p", corr, 40, 0, 32, correlated=True))
    control = _rows(write_set(tmp_path / "c", corr, 40, 0, 32, correlated=False))
    assert all(r["attributes"]["glasses"] == "yes" and r["attributes"]["background"] == "green" for r in polluted)
    assert all(r["attributes"]["glasses"] == "yes" for r in control)
    assert len({r["attributes"]["background"] for r in control}) >= 3
    for row in polluted + control:
        said = parse_caption(row["base_caption"], complete=False)
        assert "background" not in said and "glasses" not in said  # neither is in the base caption
        assert row["target_caption"] == "wearing glasses"
        assert (tmp_path / ("p" if row in polluted else "c") / row["file_name"]).is_file()


def test_base_prompts_ask_for_another_spurious_value_and_leave_the_target_absent():
    for prompt in base_prompts(Correlation(), 50, 0):
        parsed = parse_caption(prompt)
        assert parsed["background"] != "green" and parsed["glasses"] == "no"
        assert "glasses" not in prompt


def test_wilson_interval_and_verdict():
    low, high = wilson(0, 100)
    assert low == 0.0 and 0.02 < high < 0.05
    low, high = wilson(50, 100)
    assert 0.39 < low < 0.41 and 0.59 < high < 0.61
    rate = lambda v: {"value": v}
    results = {m: {"spurious_rate": rate(v), "target_accuracy": rate(t)} for m, v, t in
               (("original", 0.02, 0.9), ("naive", 0.40, 0.95), ("control", 0.05, 0.95), ("ours", 0.08, 0.93))}
    v = verdict(results)
    assert v["pollution_reproduced"] and np.isclose(v["rise_cut_by_ours"], 1 - 0.06 / 0.38) and v["goal_met"]
    weak = {**results, "naive": {"spurious_rate": rate(0.12), "target_accuracy": rate(0.95)},
            "control": {"spurious_rate": rate(0.02), "target_accuracy": rate(0.95)},
            "ours": {"spurious_rate": rate(0.04), "target_accuracy": rate(0.95)}}
    v = verdict(weak)  # ours removes 80% of a 10-point rise: removal holds, the goal does not
    assert v["removal_met"] and not v["pollution_reproduced"] and not v["goal_met"]


# --------------------------------------------------------------------------- the methods table

def test_every_lab_method_is_a_trainable_suite_method_with_its_stage2_variant():
    from spf_train.config import Stage2Config, from_dict

    from spf_bench.core.errors import SpfError
    from spf_bench.lab.experiment import LabConfig
    from spf_bench.lab.methods import LAB_METHODS, check_methods, start_of, training_config

    expected = {  # lab name -> the Stage2Config fields that make it (METHOD.md's variants)
        "ours": {}, "ours-no-sfcm": {"no_sfcm": True}, "ours-no-attn": {"no_attn": True}, "ours-no-unet": {"no_unet": True},
        "ours-no-re": {"no_re": True}, "ours-direct-clip": {"direct_clip": True}, "stage2-full": {"trainable": "full"},
        "stage2-lora-xattn": {"trainable": "lora-xattn"}, "stage2-adapter-xattn": {"trainable": "adapter-xattn"},
        "only-stage2": {"init_from": "original"}, "ours-mask-oracle": {"mask_variant": "oracle"},
        "ours-mask-inverted": {"mask_variant": "inverted"}, "ours-mask-ones": {"mask_variant": "ones"},
        "ours-exclusion-sum": {"exclusion_norm": "none"}, "ours-mask-area": {"mask_resize": "area"},
    }
    lab = LabConfig(steps=7, batch=3)
    for name, fields in expected.items():
        start = start_of(name)
        config = training_config(name, lab, Path("data"), Path("naive-out") if start else None, Path("base"), Path("clip"))
        built = from_dict(Stage2Config, config)
        assert (built.max_steps, built.train_batch_size, built.learning_rate) == (7, 3, lab.lr_stage2), name
        assert built.init_from == ("naive-out" if name != "only-stage2" else "original"), name
        switched = {f: getattr(built, f) for f in ("no_sfcm", "no_attn", "no_unet", "no_re", "direct_clip") if getattr(built, f)}
        switched |= {"trainable": built.trainable} if built.trainable != "xattn" else {}
        switched |= {"init_from": "original"} if built.init_from == "original" else {}
        switched |= {"mask_variant": built.mask_variant} if built.mask_variant != "sfcm" else {}
        switched |= {"exclusion_norm": built.exclusion_norm} if built.exclusion_norm != "weight-sum" else {}
        switched |= {"mask_resize": built.mask_resize} if built.mask_resize != "bilinear" else {}
        assert switched == fields, name
    assert set(expected) | {"naive", "control", "lora", "adalora", "tokencompose", "magnet"} == set(LAB_METHODS)
    assert LAB_METHODS["control"].data == "control" and LAB_METHODS["naive"].data == "correlated"
    tokencompose = training_config("tokencompose", lab, Path("data"), None, Path("base"), Path("clip"))
    assert (tokencompose["max_steps"], tokencompose["train_batch_size"], tokencompose["gradient_accumulation_steps"]) == (7, 3, 1)
    assert start_of("tokencompose") is None
    with pytest.raises(SpfError, match="Unknown lab method 'ours-typo'"):
        check_methods(("naive", "ours-typo"))


# --------------------------------------------------------------------------- a tiny lab, trained

synth_weights = pytest.mark.usefixtures("shipped_synth_weights")  # they ship with the package: missing is a failure
TINY = dict(train_images=8, steps=2, batch=2, prompts=4, methods=("naive", "ours", "stage2-full"))


@pytest.fixture(scope="module")
def tiny_lab(tmp_path_factory, single_thread):
    from spf_bench.lab.experiment import Lab, LabConfig
    from spf_bench.world.ship import load_shipped_oracle

    oracle = load_shipped_oracle()
    lab = Lab(tmp_path_factory.mktemp("lab"), LabConfig(**TINY), synth_source.folder("sd15"), synth_source.folder("clip"))
    return lab, oracle, lab.measure(oracle, report=lambda *a: None)


def _unet(folder: Path) -> dict:
    from safetensors.torch import load_file

    return {k: v.float() for k, v in load_file(folder / "unet" / "diffusion_pytorch_model.safetensors").items()}


def _changed(a: dict, b: dict) -> set[str]:
    return {k for k in a if not torch.equal(a[k], b[k])}


@synth_weights
def test_each_method_changes_the_weights_it_should(tiny_lab):
    lab = tiny_lab[0]
    original, naive = _unet(synth_source.folder("sd15")), _unet(lab.checkpoint("naive"))
    ours, full = _unet(lab.checkpoint("ours")), _unet(lab.checkpoint("stage2-full"))
    assert _changed(original, naive), "stage 1 left the UNet as it was"
    in_ours = _changed(naive, ours)
    assert in_ours and all(".attn2." in k for k in in_ours), sorted(k for k in in_ours if ".attn2." not in k)[:5]
    assert any(".attn2." not in k for k in _changed(naive, full)), "stage 2 on the full UNet changed only attn2"


@synth_weights
def test_summary_rates_are_the_oracle_on_the_saved_images(tiny_lab):
    from spf_bench.world.attributes import NAMES, index_of
    from spf_bench.lab.experiment import ORIGINAL

    lab, oracle, summary = tiny_lab
    corr = lab.config.correlation
    read = lambda folder: oracle.predict(np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]))
    s_i, s_v = NAMES.index(corr.spurious), index_of(corr.spurious, corr.spurious_value)
    t_i, t_v = NAMES.index(corr.target), index_of(corr.target, corr.target_value)
    original = read(lab.out / "triples" / "originals")
    assert np.array_equal(original, read(lab.run(ORIGINAL) / "reconstruction"))
    for model in (ORIGINAL, *TINY["methods"]):
        base, custom = read(lab.run(model) / "reconstruction"), read(lab.run(model) / "images")
        result = summary["results"][model]
        assert len(base) == len(custom) == TINY["prompts"]
        assert result["spurious_rate"]["value"] == pytest.approx((base[:, s_i] == s_v).mean())
        assert result["target_accuracy"]["value"] == pytest.approx((custom[:, t_i] == t_v).mean())
        assert result["change_rate"]["hat"]["value"] == pytest.approx((base[:, NAMES.index("hat")] != original[:, NAMES.index("hat")]).mean())
        metrics = result["metrics"]
        assert set(METRIC_ORDER) <= set(metrics) and all(metrics[m]["n"] >= 1 for m in METRIC_ORDER if m != "ID"), model
        assert (lab.run(model) / "per_pair.csv").is_file()
    text = (lab.out / "summary.md").read_text()
    assert all(m in text for m in ("| stage2-full |", "Seg-Cons", "customized prompts (after)"))
    assert (lab.out / "grid.txt").read_text().count("\n") == 2 * (1 + len(TINY["methods"]))


@synth_weights
def test_a_second_measure_reuses_checkpoints_and_images(tiny_lab, monkeypatch):
    from spf_bench.lab import methods as lab_methods

    lab, oracle, summary = tiny_lab
    kept = sorted(p for p in list((lab.out / "checkpoints").rglob("*")) + list((lab.out / "images").glob("*")) if p.is_file())
    before = {p: p.stat().st_mtime_ns for p in kept}

    def refuse(*args, **kwargs):
        raise AssertionError("the second measure trained or drew again")

    monkeypatch.setattr(lab_methods, "train", refuse)
    monkeypatch.setattr(type(lab), "_model", refuse)
    again = lab.measure(oracle, report=lambda *a: None)
    assert again["results"] == summary["results"]
    assert {p: p.stat().st_mtime_ns for p in kept} == before


@synth_weights
def test_a_lab_folder_refuses_other_settings(tiny_lab):
    from spf_bench.core.errors import SpfError
    from spf_bench.lab.experiment import Lab, LabConfig

    lab = tiny_lab[0]
    with pytest.raises(SpfError, match="other settings"):
        Lab(lab.out, LabConfig(**{**TINY, "steps": 3}), lab.base_model, lab.clip_model)


@synth_weights
def test_a_stage2_checkpoint_made_with_another_clip_is_refused_and_a_naive_one_kept(tiny_lab, tmp_path):
    # Stage 2 reads the CLIP (the map's relevance weights, the response loss): a lab pointed at
    # a retrained CLIP must not reuse its checkpoint; naive never reads it, so it stays valid.
    import shutil

    from spf_bench.core.errors import SpfError
    from spf_bench.lab.experiment import Lab

    lab = tiny_lab[0]
    other_clip = tmp_path / "clip"
    shutil.copytree(lab.clip_model, other_clip)
    weights = other_clip / "open_clip_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-2] + b"\0\0")  # another CLIP under the same layout
    moved = Lab(lab.out, lab.config, lab.base_model, other_clip)
    assert moved.train("naive", report=lambda *a: None) == lab.checkpoint("naive")
    with pytest.raises(SpfError, match="other settings"):
        moved.train("ours", report=lambda *a: None)


def test_stage2_budget_applies_to_stage2_methods_only_and_is_pinned_only_when_given():
    from spf_bench.lab.experiment import LabConfig
    from spf_bench.lab.methods import training_config

    lab = LabConfig(steps=7, batch=3, stage2_steps=20, lr_stage2=5e-4)
    for name, steps, lr in (("ours", 20, 5e-4), ("ours-mask-oracle", 20, 5e-4), ("only-stage2", 20, 5e-4),
                            ("naive", 7, lab.lr_full), ("lora", 7, lab.lr_adapter)):
        config = training_config(name, lab, Path("data"), Path("naive-out"), Path("base"), Path("clip"))
        assert (config["max_steps"], config["learning_rate"]) == (steps, lr), name
        assert config["checkpoint_every"] == max(1, steps // 3), name
    assert lab.pinned()["stage2_steps"] == 20
    assert "stage2_steps" not in LabConfig(steps=7).pinned()


def test_stage2_budget_flags_reach_the_lab_config_and_refuse_nonsense():
    import argparse

    from spf_bench.commands.synth_options import add_lab_options, stage2_budget
    from spf_bench.core.errors import SpfError

    parser = argparse.ArgumentParser()
    add_lab_options(parser, methods_default="naive", methods_help="", prompts_default=100, prompts_help="")
    assert stage2_budget(parser.parse_args([])) == {}
    assert stage2_budget(parser.parse_args(["--stage2-steps", "750", "--lr-stage2", "5e-4"])) == {"stage2_steps": 750, "lr_stage2": 5e-4}
    with pytest.raises(SpfError, match="--stage2-steps must be at least 1, got 0"):
        stage2_budget(parser.parse_args(["--stage2-steps", "0"]))
    with pytest.raises(SpfError, match="--lr-stage2 must be a positive"):
        stage2_budget(parser.parse_args(["--lr-stage2", "-1"]))
    # --lr is naive's rate (and TokenCompose's); stage 2 takes it unless given its own.
    assert stage2_budget(parser.parse_args(["--lr", "3e-4"])) == {"lr_full": 3e-4, "lr_stage2": 3e-4}
    assert stage2_budget(parser.parse_args(["--lr", "3e-4", "--lr-stage2", "5e-4"])) == {"lr_full": 3e-4, "lr_stage2": 5e-4}
    with pytest.raises(SpfError, match="--lr must be a positive"):
        stage2_budget(parser.parse_args(["--lr", "0"]))
    from spf_bench.lab.experiment import LabConfig
    from spf_bench.lab.methods import training_config

    lab = LabConfig(steps=7, batch=3, **stage2_budget(parser.parse_args(["--lr", "3e-4"])))
    for name, lr in (("naive", 3e-4), ("control", 3e-4), ("tokencompose", 3e-4), ("ours", 3e-4), ("lora", 1e-3)):
        config = training_config(name, lab, Path("data"), Path("naive-out"), Path("base"), Path("clip"))
        assert config["learning_rate"] == lr, name


@synth_weights
def test_a_retrained_start_invalidates_what_was_built_on_it_and_its_own_drawings(tiny_lab, tmp_path):
    # Deleting naive's checkpoint and training it again: its old drawings go with it, and
    # ours (stage 2 on top of naive) is refused unless naive came back byte for byte.
    import shutil

    from spf_bench.core.errors import SpfError
    from spf_bench.lab.experiment import Lab

    lab = tiny_lab[0]
    copy = Lab(tmp_path / "lab", lab.config, lab.base_model, lab.clip_model)
    shutil.copytree(lab.out, copy.out, dirs_exist_ok=True)
    drawn = copy.out / "images" / "naive-custom.npy"
    assert drawn.is_file()
    marker = copy.checkpoint("naive") / ".lab-trained"
    stamp = marker.read_text()
    # Another start under the same settings (as a retraining on other hardware would give).
    weights = next(p for p in sorted(copy.checkpoint("naive").rglob("*.safetensors")))
    shutil.rmtree(copy.checkpoint("naive"))
    copy.train("naive", report=lambda *a: None)
    assert marker.read_text() == stamp and not drawn.exists()
    weights.write_bytes(weights.read_bytes()[:-2] + b"\0\0")
    with pytest.raises(SpfError, match="other settings"):
        copy.train("ours", report=lambda *a: None)
