"""The world's metrics in the leaderboard, the tables and the report: present for synth runs only."""

from __future__ import annotations

import pandas as pd
import pytest

from spf_bench.results import tables
from spf_bench.evaluation.evaluator import evaluate_run
from spf_bench.results.report import ReportOptions, build_report
from spf_bench.results.runs import load_runs
from spf_bench.world.attributes import NAMES
from support.report_runs import write_standard_runs
from support.world_cases import readable_cases, write_world_method, write_world_triples

pytestmark = [pytest.mark.usefixtures("shipped_synth_weights"),  # shipped with the package: missing fails
              pytest.mark.usefixtures("single_thread")]

WORLD = ("Target-Acc", "Attr-Pres", "ID-Pres")
BORROWED = ("hps", "inception", "lpips", "mps", "sam")  # what the tiny zoo lends the synth weights


@pytest.fixture(scope="module")
def synth_runs(tmp_path_factory):
    """A results folder of two synth methods (a clean edit and a polluting one), triple set inside."""
    from spf_bench.world.ship import load_shipped_oracle

    oracle = load_shipped_oracle()
    size = oracle.config["size"]
    root = tmp_path_factory.mktemp("synth-runs")
    cases = readable_cases(oracle, 4, size, seed=1)
    triples = write_world_triples(root / "triples", cases, size)
    networks = {"oracle": oracle}
    for method in ("clean", "polluted"):
        evaluate_run(triples, write_world_method(root, method, cases, size), weights="synth", metrics=("ID", "CLIP-T", "LPIPS"),
                     n_bootstrap=100, networks=networks, use_cache=False, progress=False)
    tables.write_leaderboard(root)
    return root


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    root = write_standard_runs(tmp_path_factory.mktemp("tiny-runs"), methods=("naive", "ours"), reconstruction=False)
    tables.write_leaderboard(root)
    return root


def test_leaderboard_has_the_world_columns_for_synth_and_not_for_tiny(synth_runs, tiny_runs):
    synth = pd.read_csv(synth_runs / "leaderboard.csv")
    tiny = pd.read_csv(tiny_runs / "leaderboard.csv")
    for name in WORLD:
        assert {name, f"{name} ci_low", f"{name} ci_high", f"{name} mark"} <= set(synth.columns), name
        assert not any(column.startswith(name) for column in tiny.columns), name
    clean, polluted = (synth.set_index("method").loc[m] for m in ("clean", "polluted"))
    assert clean["Attr-Pres"] == 1.0 and polluted["Attr-Pres"] == pytest.approx(1 - 1 / (len(NAMES) - 1), abs=1e-12)
    assert clean["Attr-Pres mark"] == "best" and polluted["Target-Acc"] == 1.0
    markdown = (synth_runs / "leaderboard.md").read_text()
    assert f"{tables.WORLD_GROUP}: Target-Acc ↑" in markdown and "Attr-Pres ↑" in markdown and "ID-Pres ↑" in markdown
    assert "Target" not in (tiny_runs / "leaderboard.md").read_text()


def test_leaderboard_says_which_networks_are_the_worlds(synth_runs, tiny_runs):
    markdown = (synth_runs / "leaderboard.md").read_text()
    note = next(line for line in markdown.splitlines() if line.startswith("Networks of the synth weights"))
    world, borrowed = note.split(";", 1)
    assert all(name in world for name in ("clip", "face", "sd15", "oracle"))
    # only the networks this run's metrics used (LPIPS's), named as the tiny zoo's
    assert "the untrained tiny zoo lends lpips, so the numbers of LPIPS only test the pipeline" in borrowed
    assert not any(name in borrowed for name in set(BORROWED) - {"lpips"})
    assert "Networks of the synth weights" not in (tiny_runs / "leaderboard.md").read_text()


def test_tables_and_the_paired_test_carry_the_world_metrics(synth_runs, tiny_runs):
    runs = load_runs(synth_runs)
    per_category = tables.per_category_table(runs)
    assert {"Target-Acc", "Attr-Pres", "ID-Pres"} <= {m.name for m in per_category.metrics}
    test = tables.compare_methods(runs["clean"], runs["polluted"], draws=200).set_index("metric")
    assert test.loc["Attr-Pres", "mean_diff"] == pytest.approx(-1 / (len(NAMES) - 1), abs=1e-12)
    assert test.loc["Target-Acc", "mean_diff"] == 0.0
    assert not set(WORLD) & {m.name for m in tables.per_category_table(load_runs(tiny_runs)).metrics}


def test_report_states_the_networks_beside_the_weights(synth_runs, tmp_path):
    index = build_report(synth_runs, ReportOptions(out=tmp_path / "report"))
    page = (index.parent / "index.md").read_text()
    weights_line = page.index("- Weights: synth.")
    assert page.index("- Networks of the synth weights") > weights_line
    assert "Target-Acc" in page and "Attr-Pres" in page
