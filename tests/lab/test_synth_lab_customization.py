"""The pollution lab's customization mode: its prompts, its Pollution and verdict on hand-made
labels and values, its sets' masks, its options, and a tiny world table trained on a
customization set whose figures are recomputed from its own records."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from spf_bench.core.errors import SpfError
from spf_bench.lab.customization import Customization, pollution, pollution_flags, target_hits, verdict
from spf_bench.world.attributes import NAMES, NOVEL_NAMES, index_of
from spf_bench.world.captions import attribute_phrase, parse_caption
from spf_bench.world.custom_sets import Bias, CustomSet
from spf_bench.zoo import synth_source


def test_base_prompts_ask_for_another_value_of_every_biased_attribute_and_no_novel_one():
    custom = Customization(biases=(Bias("background", "green", 0.8), Bias("shirt", "red", 0.7), Bias("style", "photo", 0.7)))
    plan = custom.prompts(40, seed=3)
    for base in plan["base"]:
        said = parse_caption(base, complete=False)
        for bias in custom.biases:
            assert bias.attribute in said and said[bias.attribute] != bias.value, (base, bias)
        assert not set(NOVEL_NAMES) & set(said), base
    assert plan["base"] == Customization().prompts(40, seed=3)["base"]  # seeded by the lab seed...
    assert plan["base"] != custom.prompts(40, seed=4)["base"]  # ...and by nothing else


def test_targets_are_dealt_in_turn_with_their_phrases_and_categories():
    from spf_bench.lab.experiment import Lab, LabConfig

    custom = Customization(targets=("tie", "freckles", "earrings"))
    plan = custom.prompts(7, seed=0)
    assert plan["target"] == ["tie", "freckles", "earrings", "tie", "freckles", "earrings", "tie"]
    assert plan["caption"] == [attribute_phrase(t, "yes") for t in plan["target"]]
    assert plan["category"][:3] == ["clothing", "facial_attributes", "accessories"]
    lab = Lab.__new__(Lab)  # the prompt plan needs no folder
    lab.config = LabConfig(customization=custom, prompts=7)
    for base, full, target in zip(lab.prompts()["base"], lab.prompts()["custom"], plan["target"]):
        assert parse_caption(full)[target] == "yes" and parse_caption(base)[target] == "no"
        assert {**parse_caption(full), target: "no"} == parse_caption(base)  # the rest as the base says it
    # A known attribute taught: absent and unsaid in the base prompts as well.
    for base in Customization(targets=("glasses",)).prompts(30, seed=1)["base"]:
        assert "glasses" not in parse_caption(base, complete=False)


def _labels(rows: list[dict]) -> np.ndarray:
    """Oracle labels (value indices) of hand-made attribute readings; unnamed ones at value 0."""
    out = np.zeros((len(rows), len(NAMES)), dtype=int)
    for i, row in enumerate(rows):
        for name, value in row.items():
            out[i, NAMES.index(name)] = index_of(name, value)
    return out


def test_pollution_is_the_share_of_biased_attributes_read_at_their_biased_value():
    biases = (Bias("background", "green", 0.8), Bias("shirt", "red", 0.7))
    labels = _labels([{"background": "green", "shirt": "red"}, {"background": "green", "shirt": "blue"},
                      {"background": "pink", "shirt": "yellow"}, {"background": "blue", "shirt": "red"}])
    assert pollution(labels, biases).tolist() == [1.0, 0.5, 0.0, 0.5]
    flags = pollution_flags(labels, biases)
    assert flags["background"].tolist() == [True, True, False, False] and flags["shirt"].tolist() == [True, False, False, True]
    assert np.isnan(pollution(labels, ())).all()  # no bias, no pollution to read
    hits = target_hits(_labels([{"tie": "yes"}, {"tie": "yes"}, {"freckles": "yes"}]), ["tie", "freckles", "freckles"])
    assert hits.tolist() == [True, False, True]  # each prompt against its own target


def test_the_verdict_compares_naive_and_ours_with_the_control():
    values = {"control": {"Target-Acc": 0.90, "Attr-Pres": 0.95, "ID-Pres": 0.90, "Pollution": 0.10},
              "naive": {"Target-Acc": 0.92, "Attr-Pres": 0.80, "ID-Pres": 0.86, "Pollution": 0.50},
              "ours": {"Target-Acc": 0.89, "Attr-Pres": 0.92, "ID-Pres": 0.90, "Pollution": 0.18}}
    v = verdict(values)
    assert v["fall_points"] == pytest.approx({"Attr-Pres": 15.0, "ID-Pres": 4.0, "Pollution": 40.0})
    assert v["removed"]["ours"] == pytest.approx({"Attr-Pres": 1 - 3 / 15, "ID-Pres": 1.0, "Pollution": 1 - 8 / 40})
    assert v["polluting_metrics"] == ["Attr-Pres", "Pollution"] and v["pollution_reproduced"]
    assert v["target_gap_points_naive_minus_ours"] == pytest.approx(3.0) and v["target_within_5_points"]
    assert v["removal_met"] and v["goal_met"]
    worse = verdict({**values, "ours": {**values["ours"], "Pollution": 0.30}})  # removes half of the pollution only
    assert worse["removed"]["ours"]["Pollution"] == pytest.approx(0.5) and not worse["removal_met"] and not worse["goal_met"]
    slow = verdict({**values, "ours": {**values["ours"], "Target-Acc": 0.85}})  # 7 points below naive
    assert not slow["target_within_5_points"] and not slow["goal_met"]
    mild = verdict({**values, "naive": {**values["naive"], "Attr-Pres": 0.90, "Pollution": 0.15}})  # falls under 10 points
    assert not mild["pollution_reproduced"] and not mild["goal_met"] and "removal_met" not in mild
    assert "goal_met" not in verdict({m: values[m] for m in ("control", "naive")})  # no ours: nothing assumed


def test_a_customization_set_records_its_target_masks_and_groundings(tmp_path):
    from spf_bench.world import custom_sets
    from spf_train.tokencompose.data import _parse_groundings

    folder = custom_sets.write(tmp_path / "set", CustomSet(images=5, seed=2), size=32)
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    for row in rows:
        mask = np.asarray(Image.open(folder / row["target_mask"]))
        assert mask.shape == (32, 32) and (mask > 0).any(), row["target_caption"]
        assert row["masks"] == {row["target_caption"]: row["target_mask"]}
    groundings = _parse_groundings(folder, "tiny")  # TokenCompose reads them as they are
    assert {name: list(g) for name, g in groundings.items()} == {r["file_name"]: [r["target_caption"]] for r in rows}


def test_a_correlation_lab_pins_what_it_pinned_before():
    from spf_bench.lab.experiment import LabConfig

    assert LabConfig().pinned() == {
        "correlation": {"target": "glasses", "target_value": "yes", "spurious": "background", "spurious_value": "green"},
        "train_images": 64, "steps": 300, "batch": 8, "lr_full": 1e-4, "lr_stage2": 1e-4, "lr_adapter": 1e-3,
        "prompts": 100, "seed": 0, "size": 32}
    pinned = LabConfig(customization=Customization(identities=3)).pinned()
    assert "correlation" not in pinned and pinned["customization"]["identities"] == 3


def test_customization_defaults_are_the_customization_sets():
    from spf_bench.commands.synth_options import CUSTOMIZATION_IMAGES

    custom, spec = Customization(), CustomSet()
    assert (custom.targets, custom.identities, custom.biases, custom.say_biased) == (spec.targets, spec.identities, spec.biases, spec.say_biased)
    assert CUSTOMIZATION_IMAGES == spec.images
    assert custom.spec(9, 4, control=True) == CustomSet(images=9, seed=4, control=True)
    with pytest.raises(SpfError, match="both taught and biased"):
        Customization(targets=("glasses",), biases=(Bias("glasses", "yes", 0.5),))
    import argparse

    from spf_bench.commands.synth_options import add_customization_options

    parser = argparse.ArgumentParser()
    add_customization_options(parser)
    helps = {a.dest: a.help for a in parser._actions}
    assert f"(default {spec.identities})" in helps["identities"] and f"(default {spec.say_biased})" in helps["say_biased"]
    assert ", ".join(f"{b.attribute}={b.value}:{b.share}" for b in spec.biases) in helps["bias"]


@pytest.mark.parametrize("argv, words", [
    (["--customization", "--target", "hat=yes"], "--target sets the correlation mode"),
    (["--customization", "--spurious", "shirt=red"], "--spurious sets the correlation mode"),
    (["--bias", "background=grey:0.9"], "add --customization"),
    (["--customization", "--bias", "background=purple:0.8"], "not ATTRIBUTE=VALUE:SHARE"),
    (["--customization", "--identities", "0"], "at least one identity"),
])
def test_the_lab_commands_refuse_options_of_the_other_mode(tmp_path, capsys, argv, words):
    from spf_bench.cli import main

    for command in ("lab", "table"):
        assert main(["synth", command, "--out", str(tmp_path / command), *argv]) != 0
        assert words in capsys.readouterr().err
        assert not (tmp_path / command).exists()  # refused before anything was made


# --------------------------------------------------------------------------- a tiny table, trained

synth_weights = pytest.mark.usefixtures("shipped_synth_weights")  # they ship with the package: missing is a failure
METHODS = ("naive", "control", "ours", "ours-mask-oracle")
CUSTOM = Customization(targets=("freckles", "tie"), identities=2,
                       biases=(Bias("background", "green", 0.9), Bias("shirt", "red", 0.9)))


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory, single_thread):
    from spf_bench.lab.experiment import LabConfig
    from spf_bench.lab.table import LabTable, TableConfig
    from spf_bench.world.ship import load_shipped_oracle

    oracle = load_shipped_oracle()
    config = TableConfig(LabConfig(train_images=4, steps=2, batch=2, prompts=2, methods=METHODS,
                                   metrics=("Target-Acc", "Attr-Pres"),  # the world's two oracle metrics: no network to load
                                   customization=CUSTOM), seeds=(0,))
    table = LabTable(tmp_path_factory.mktemp("table"), config, synth_source.folder("sd15"), synth_source.folder("clip"))
    return table, oracle, table.run(oracle, report=lambda *a: None)


@synth_weights
def test_a_customization_lab_trains_on_its_set_and_its_control(tiny_table):
    table = tiny_table[0]
    lab = table.lab(0)
    for kind, control in (("correlated", False), ("control", True)):
        saved = json.loads((lab.out / "sets" / kind / "customization.json").read_text())
        assert saved["spec"] == json.loads(json.dumps(CUSTOM.spec(4, 0, control=control).describe()))
    for method in METHODS:
        assert (lab.checkpoint(method) / ".lab-trained").is_file(), method
    triples = json.loads((lab.out / "triples" / "manifest.json").read_text())["triples"]
    assert [t["target_caption"] for t in triples] == ["with freckles", "wearing a tie"]
    assert [t["category"] for t in triples] == ["facial_attributes", "clothing"]


@synth_weights
def test_the_customization_table_agrees_with_a_recomputation_from_its_records(tiny_table):
    from spf_bench.lab.table import POLLUTION, build_table, paper_reference, _json_safe, customization_verdict

    table, oracle, result = tiny_table
    records = pd.read_csv(table.out / "records.csv")
    saved = json.loads((table.out / "table.json").read_text())
    models = ["original", *METHODS]
    for metric in ("Target-Acc", "Attr-Pres", POLLUTION, "PR-Summary"):
        for model in models:
            rows = records[(records["model"] == model) & (records["metric"] == metric)]
            assert saved["values"][model][metric]["value"] == pytest.approx(rows.groupby("seed")["value"].mean().mean())
    # Pollution is the oracle's reading of the saved base-prompt images against the biases.
    lab = table.lab(0)
    for model in ("naive", "control"):
        images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted((lab.run(model) / "reconstruction").glob("*.png"))])
        mine = records[(records["model"] == model) & (records["metric"] == POLLUTION)].sort_values("prompt")["value"]
        assert np.allclose(mine.to_numpy(), pollution(oracle.predict(images), CUSTOM.biases))
    rebuilt = build_table(records, models, paper_reference())
    rebuilt["verdict"] = customization_verdict(rebuilt)
    assert json.dumps(_json_safe(rebuilt), sort_keys=True) == json.dumps({k: v for k, v in saved.items() if k != "config"}, sort_keys=True)
    # The verdict from the records by hand: naive's fall below the control in points.
    mean = lambda m, k: records[(records["model"] == m) & (records["metric"] == k)]["value"].mean()  # noqa: E731
    fall = saved["verdict"]["fall_points"]
    assert fall["Attr-Pres"] == pytest.approx(100 * (mean("control", "Attr-Pres") - mean("naive", "Attr-Pres")))
    assert fall["Pollution"] == pytest.approx(100 * (mean("naive", POLLUTION) - mean("control", POLLUTION)))
    assert isinstance(saved["verdict"]["pollution_reproduced"], bool)
    assert "## The customization goal" in (table.out / "table.md").read_text()


@synth_weights
def test_the_customization_summary_reads_the_saved_images(tiny_table):
    table, oracle = tiny_table[:2]
    lab = table.lab(0)
    summary = json.loads((lab.out / "summary.json").read_text())
    plan = CUSTOM.prompts(2, 0)
    for model in ("original", *METHODS):
        custom = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted((lab.run(model) / "images").glob("*.png"))])
        hits = target_hits(oracle.predict(custom), plan["target"])
        result = summary["results"][model]
        assert result["target_accuracy"]["value"] == pytest.approx(hits.mean())
        assert result["target_accuracy_by_target"]["tie"]["value"] == pytest.approx(hits[1::2].mean())
        assert set(result["pollution_by_attribute"]) == {"background", "shirt"}
    per_pair = pd.read_csv(lab.run("naive") / "per_pair.csv")
    assert summary["verdict"]["fall_points"]["Attr-Pres"] == pytest.approx(
        100 * (pd.read_csv(lab.run("control") / "per_pair.csv")["Attr-Pres"].mean() - per_pair["Attr-Pres"].mean()))
    text = (lab.out / "summary.md").read_text()
    assert "Pollution lab on a customization set" in text and "ours-mask-oracle" in text
    assert math.isfinite(summary["results"]["naive"]["pollution"]["value"])
