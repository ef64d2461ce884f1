"""The world Tab. 1: its statistics on hand-made records, and a tiny table trained on the
shipped world whose every figure is recomputed from its own per-image records."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from spf_bench.lab import table_stats as st
from spf_bench.lab.table import (
    POLLUTION, SUMMARY, build_table, higher_is_better, paper_reference, paper_row, summary_records,
)
from spf_bench.zoo import synth_source


def _records(rows):
    return pd.DataFrame(rows, columns=list(st.RECORD_COLUMNS))


# --------------------------------------------------------------------------- statistics, by hand

def test_a_cell_is_the_mean_of_seed_means_with_an_interval_over_seeds_and_prompts():
    rows = [(0, "m", p, "LPIPS", v) for p, v in enumerate([0.1, 0.2, 0.3])]
    rows += [(1, "m", p, "LPIPS", v) for p, v in enumerate([0.5, 0.5, 0.5, 0.5])]  # another count of prompts
    cell = st.cell(_records(rows), "m", "LPIPS")
    assert cell["per_seed"] == {0: pytest.approx(0.2), 1: pytest.approx(0.5)}
    assert cell["value"] == pytest.approx(0.35) and cell["n"] == 7
    # Every resample's mean lies between the smallest and largest seed-level mean it can form.
    assert 0.1 <= cell["ci_low"] < 0.35 < cell["ci_high"] <= 0.5
    fid = st.cell(_records([(s, "m", st.SET_LEVEL, "FID", v) for s, v in enumerate([10.0, 12.0, 14.0])]), "m", "FID")
    half = 4.302652729911275 * 2.0 / math.sqrt(3)  # t(0.975, 2) x sd / sqrt(n)
    assert (fid["value"], fid["ci_low"], fid["ci_high"]) == pytest.approx((12.0, 12.0 - half, 12.0 + half))


def test_the_paired_test_compares_the_same_seed_and_prompt():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(3, 50))
    rows = [(s, "ours", p, "ID", base[s, p]) for s in range(3) for p in range(50)]
    rows += [(s, "abl", p, "ID", base[s, p] - 0.05) for s in range(3) for p in range(50)]  # a constant shift
    rows += [(s, "same", p, "ID", base[s, p]) for s in range(3) for p in range(50)]
    records = _records(rows)
    shifted = st.paired(records, "abl", "ours", "ID")
    # The shift is exact on every pair, so the paired interval has no width, although the
    # unpaired values spread over several units.
    assert (shifted["mean_diff"], shifted["ci_low"], shifted["ci_high"]) == pytest.approx((-0.05, -0.05, -0.05))
    assert shifted["p"] < 0.001 and shifted["n"] == 150
    assert st.agreement("worse", shifted, True) == ("worse", "yes")
    assert st.agreement("better", shifted, True) == ("worse", "no")
    assert st.agreement("", shifted, True) == ("worse", "no paper value")
    same = st.paired(records, "same", "ours", "ID")
    assert same["mean_diff"] == 0 and st.agreement("worse", same, True) == ("not separated", "not separated")
    # A pair missing on one side is left out, not compared with another prompt.
    partial = st.paired(records[~((records["model"] == "abl") & (records["prompt"] == 0))], "abl", "ours", "ID")
    assert partial["n"] == 147
    missing = st.paired(records, "abl", "ours", "LPIPS")  # a metric neither model has
    assert missing["n"] == 0 and st.agreement("worse", missing, False) == ("", "no data")


def test_a_shift_on_few_pairs_of_a_yes_no_metric_is_not_read_as_p_one():
    # Target-Acc-like: the ablation misses the target on two prompts of each seed and matches
    # ours elsewhere, so many resamples of the differences are exactly zero and none above it.
    rows = [(s, "ours", p, "Target-Acc", 1.0) for s in range(3) for p in range(40)]
    rows += [(s, "abl", p, "Target-Acc", 0.0 if p in (s, s + 7) else 1.0) for s in range(3) for p in range(40)]
    test = st.paired(_records(rows), "abl", "ours", "Target-Acc")
    assert test["ci_high"] <= 0 and test["mean_diff"] == pytest.approx(-0.05)
    boot = st.nested_bootstrap([np.where(np.isin(np.arange(40), (s, s + 7)), -1.0, 0.0) for s in range(3)])
    zero = float(np.mean(boot == 0))
    assert 0 < zero < 1 and not (boot > 0).any()
    # Exact zeros count half on each side: p = 2 x (zeros / 2 + 1) / (draws + 1), well below 1.
    assert test["p"] == pytest.approx(2 * (zero * len(boot) / 2 + 1) / (len(boot) + 1))
    assert test["p"] < 0.5
    same = st.paired(_records([r for r in rows if r[1] == "ours"] + [(s, "twin", p, "Target-Acc", 1.0) for s in range(3) for p in range(40)]),
                     "twin", "ours", "Target-Acc")
    assert same["p"] == 1.0


def test_agreement_counts_tally_each_models_metrics_with_a_paper_direction():
    from spf_bench.lab.table import agreement_counts

    comparisons = {"naive": {"LPIPS": {"agrees": "yes"}, "CLIP-T": {"agrees": "no"}, "Pollution": {"agrees": "no paper value"}},
                   "ours-no-re": {"LPIPS": {"agrees": "not separated"}, "CLIP-T": {"agrees": "yes"}},
                   "control": {"LPIPS": {"agrees": "no paper value"}}}  # no paper row: left out, not a row of zeros
    counts = agreement_counts(comparisons)
    assert counts == {"naive": {"yes": 1, "no": 1, "not separated": 0},
                      "ours-no-re": {"yes": 1, "no": 0, "not separated": 1},
                      "all": {"yes": 2, "no": 1, "not separated": 1}}
    assert agreement_counts({"control": {"LPIPS": {"agrees": "no data"}}}) == {}


def test_directions_follow_each_metrics_sense():
    assert st.direction(-0.2, higher_is_better("LPIPS")) == "better"  # lower LPIPS: closer to the original
    assert st.direction(-0.2, higher_is_better("CLIP-T")) == "worse"
    assert st.direction(0.1, higher_is_better(POLLUTION)) == "worse"
    assert st.direction(0.0, True) == "same" and st.direction(math.nan, True) == ""


def test_the_paper_rows_and_directions_come_from_the_papers_table():
    paper = paper_reference()
    assert paper_row("ours-no-sfcm") == "ours-no-sfcm" and paper_row("control") is None and paper_row("ours-direct-clip") == "ours-direct-clip"
    assert paper["ours-no-sfcm"]["LPIPS"] == 0.14 and paper["ours"]["CLIP-T"] == 0.30
    # The paper: without the SFCM, LPIPS improves (0.14 vs 0.35) and CLIP-T collapses (0.17 vs 0.30).
    rows = [(0, m, p, k, 0.5) for m in ("ours", "ours-no-sfcm") for p in range(3) for k in ("LPIPS", "CLIP-T")]
    table = build_table(_records(rows), ["ours", "ours-no-sfcm"], paper)
    verdicts = table["vs_ours"]["ours-no-sfcm"]
    assert verdicts["LPIPS"]["paper"] == "better" and verdicts["CLIP-T"]["paper"] == "worse"
    assert verdicts["LPIPS"]["agrees"] == "not separated"


def test_the_summary_weighs_responsiveness_and_preservation_equally():
    rows = [(0, "m", 0, "Target-Acc", 1.0), (0, "m", 0, "Attr-Pres", 0.8), (0, "m", 0, "ID-Pres", 0.6), (0, "m", 0, POLLUTION, 1.0),
            (0, "m", 1, "Target-Acc", 0.0), (0, "m", 1, "Attr-Pres", 1.0), (0, "m", 1, POLLUTION, 0.0),  # no face: no ID-Pres
            (0, "m", st.SET_LEVEL, "FID", 30.0)]
    out = summary_records(_records(rows)).set_index("prompt")["value"]
    assert out[0] == pytest.approx(0.5 + 0.5 * (0.8 + 0.6 + 0.0) / 3)
    assert out[1] == pytest.approx(0.0 + 0.5 * (1.0 + 1.0) / 2)
    assert st.SET_LEVEL not in out.index


# --------------------------------------------------------------------------- a tiny table, trained

synth_weights = pytest.mark.usefixtures("shipped_synth_weights")  # they ship with the package: missing is a failure
METHODS = ("ours", "ours-mask-inverted", "magnet")  # naive trains too, as ours' start


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory, single_thread):
    from spf_bench.lab.experiment import LabConfig
    from spf_bench.lab.table import LabTable, TableConfig
    from spf_bench.world.ship import load_shipped_oracle

    oracle = load_shipped_oracle()
    config = TableConfig(LabConfig(train_images=8, steps=2, batch=2, prompts=4, methods=METHODS, metrics=("LPIPS", "CLIP-T")),
                         seeds=(0, 1))
    table = LabTable(tmp_path_factory.mktemp("table"), config, synth_source.folder("sd15"), synth_source.folder("clip"))
    return table, oracle, table.run(oracle, report=lambda *a: None)


@synth_weights
def test_the_table_agrees_with_a_recomputation_from_its_records(tiny_table):
    table, oracle, result = tiny_table
    records = pd.read_csv(table.out / "records.csv")
    saved = json.loads((table.out / "table.json").read_text())
    models = ["original", *METHODS]
    assert set(records["model"]) == set(models) and set(records["seed"]) == {0, 1}
    for metric in ("LPIPS", "CLIP-T", "Target-Acc", "Attr-Pres", POLLUTION, SUMMARY):
        assert metric in saved["metrics"], metric
        for model in models:
            rows = records[(records["model"] == model) & (records["metric"] == metric)].dropna(subset=["value"])
            expected = rows.groupby("seed")["value"].mean().mean()
            assert saved["values"][model][metric]["value"] == pytest.approx(expected), (model, metric)
            if model not in ("ours", "original"):
                a = rows.set_index(["seed", "prompt"])["value"]
                ours = records[(records["model"] == "ours") & (records["metric"] == metric)].set_index(["seed", "prompt"])["value"]
                diff = (a - ours).dropna().groupby(level="seed").mean().mean()
                assert saved["vs_ours"][model][metric]["mean_diff"] == pytest.approx(diff), (model, metric)
    # The records are the runs' own per-pair scores and the oracle's reading of the saved images.
    for seed in (0, 1):
        lab = table.lab(seed)
        for model in ("ours-mask-inverted", "magnet"):
            pairs = pd.read_csv(lab.run(model) / "per_pair.csv")
            mine = records[(records["seed"] == seed) & (records["model"] == model) & (records["metric"] == "LPIPS")]
            assert np.allclose(mine.sort_values("prompt")["value"], pairs["LPIPS"])
            images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted((lab.run(model) / "reconstruction").glob("*.png"))])
            corr = lab.config.correlation
            from spf_bench.world.attributes import NAMES, index_of

            shown = oracle.predict(images)[:, NAMES.index(corr.spurious)] == index_of(corr.spurious, corr.spurious_value)
            pollution = records[(records["seed"] == seed) & (records["model"] == model) & (records["metric"] == POLLUTION)]
            assert np.array_equal(pollution.sort_values("prompt")["value"].to_numpy(), shown.astype(float))
            # Target-Acc comes from the oracle, whatever was scored, and equals the evaluator's per pair.
            target = records[(records["seed"] == seed) & (records["model"] == model) & (records["metric"] == "Target-Acc")]
            assert len(target) == len(pairs) and np.array_equal(target.sort_values("prompt")["value"].to_numpy(),
                                                                  pairs["Target-Acc"].to_numpy(dtype=float))
    assert _close(saved, records, models)
    text = (table.out / "table.md").read_text()
    assert "### ours-mask-inverted" in text and "| magnet |" in text and "CLIP-T" in text
    # The agreement summary is the tally of the comparisons the table prints.
    from spf_bench.lab.table import agreement_counts

    assert saved["agreement"] == agreement_counts(saved["vs_ours"])
    if saved["agreement"]:
        assert "## Agreement with the paper's Tab. 1" in text


def _close(saved: dict, records: pd.DataFrame, models: list[str]) -> bool:
    """The whole table rebuilt from the records file equals the saved one (to float print)."""
    from spf_bench.lab.table import _json_safe

    rebuilt = _json_safe(build_table(records, models, paper_reference()))
    return json.dumps(rebuilt, sort_keys=True) == json.dumps({k: v for k, v in saved.items() if k != "config"}, sort_keys=True)


@synth_weights
def test_a_second_run_resumes_without_training_or_drawing(tiny_table, monkeypatch):
    from spf_bench.lab import methods as lab_methods
    from spf_bench.lab.experiment import Lab

    table, oracle, result = tiny_table

    def refuse(*args, **kwargs):
        raise AssertionError("the second run trained or drew again")

    monkeypatch.setattr(lab_methods, "train", refuse)
    monkeypatch.setattr(Lab, "_model", refuse)
    again = table.run(oracle, report=lambda *a: None)
    assert json.dumps(again["values"], default=str) == json.dumps(result["values"], default=str)


@synth_weights
def test_target_acc_is_in_the_records_when_the_runs_scored_no_target_metric(tiny_table, tmp_path):
    import shutil

    from spf_bench.lab.experiment import Lab
    from spf_bench.lab.table import seed_records

    table, oracle, _ = tiny_table
    lab = table.lab(0)
    copy = tmp_path / "seed-0"
    shutil.copytree(lab.out, copy)
    for per_pair in copy.glob("runs/*/per_pair.csv"):  # as if scored with --metrics LPIPS
        pd.read_csv(per_pair).drop(columns=["Target-Acc", "CLIP-T"]).to_csv(per_pair, index=False)
    stripped = seed_records(Lab(copy, lab.config, lab.base_model, lab.clip_model), oracle, 0)
    full = seed_records(lab, oracle, 0)
    for model in ("original", *METHODS):
        mine = stripped[(stripped["model"] == model) & (stripped["metric"] == "Target-Acc")].sort_values("prompt")
        theirs = full[(full["model"] == model) & (full["metric"] == "Target-Acc")].sort_values("prompt")
        assert len(mine) == lab.config.prompts and np.array_equal(mine["value"].to_numpy(), theirs["value"].to_numpy()), model
    assert "CLIP-T" not in set(stripped["metric"]) and "PR-Summary" in set(stripped["metric"])
