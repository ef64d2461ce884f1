"""The study's analysis on known votes, the CLI's export and report, and the report's index pages."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from support.serve_runs import write_world_runs
from spf_bench.cli import main
from spf_bench.study.agreement import gold_screen, metric_agreement, rater_agreement
from spf_bench.study.analysis import bradley_terry, win_rates


def _votes(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["rater", "triple", "competitor", "question", "outcome"])
    frame["kind"] = "pair"
    frame["comparison"] = range(len(frame))
    return frame


def test_win_rate_counts_ties_half_and_its_interval_covers_it():
    rows = [(f"r{r}", f"t{t}", "naive", "OBC", [1.0, 0.5, 0.0, 1.0][(r + t) % 4]) for r in range(6) for t in range(8)]
    rates = win_rates(_votes(rows), draws=400)
    row = rates.iloc[0]
    assert (row["wins"], row["ties"], row["losses"]) == (24, 12, 12)
    assert row["win_rate"] == pytest.approx(0.625)
    assert row["ci_low"] < 0.625 < row["ci_high"] and row["ci_high"] - row["ci_low"] < 0.3


def test_bradley_terry_orders_methods_by_how_often_they_lose_to_against():
    rows = [(f"r{i % 5}", f"t{i}", c, "TAR", float(i % 10 < k)) for c, k in (("weak", 9), ("strong", 4)) for i in range(200)]
    bt = bradley_terry(_votes(rows), "ours", draws=30).set_index("method")
    assert bt.at["ours", "strength"] == 0
    assert bt.at["weak", "strength"] < 0 < bt.at["strong", "strength"]  # ours beats weak 90%, strong only 40%
    # Bradley-Terry with only 'ours' against each: log-odds of ours' win rate
    assert bt.at["weak", "strength"] == pytest.approx(-np.log(0.9 / 0.1), abs=0.05)
    assert bt.at["strong", "strength"] == pytest.approx(np.log(0.6 / 0.4), abs=0.05)


def test_agreement_is_one_for_identical_raters_and_low_for_random_ones():
    rng = np.random.default_rng(0)
    truth = rng.choice([0.0, 0.5, 1.0], 40)
    same = _votes([(f"r{r}", f"t{t}", "naive", "OBC", truth[t]) for r in range(3) for t in range(40)])
    assert rater_agreement(same).set_index("question").at["OBC", "alpha"] == pytest.approx(1.0)
    noisy = _votes([(f"r{r}", f"t{t}", "naive", "OBC", rng.choice([0.0, 0.5, 1.0])) for r in range(3) for t in range(40)])
    assert abs(rater_agreement(noisy).set_index("question").at["OBC", "alpha"]) < 0.25


def test_metric_human_agreement_against_known_preferences(tmp_path):
    from spf_bench.results.runs import load_runs

    runs = load_runs(write_world_runs(tmp_path / "runs"))
    ours, naive = (runs[m].per_pair.set_index("id")["CLIP-T"] for m in ("ours", "naive"))
    # raters prefer whichever image has the higher CLIP-T: CLIP-T agrees always, LPIPS at chance-ish
    rows = [(f"r{r}", t, "naive", "TAR", float(ours[t] > naive[t])) for r in range(3) for t in ours.index]
    table = metric_agreement(_votes(rows), {"ours": runs["ours"], "naive": runs["naive"]}, "ours", draws=100)
    clip = table[table["metric"] == "CLIP-T ↑"].iloc[0]
    assert clip["agreement"] == 1.0 and clip["units"] == len(ours)
    lpips = table[table["metric"] == "LPIPS ↓"].iloc[0]
    assert 0 < lpips["agreement"] < 1


def test_gold_screen_drops_a_rater_who_fails_them():
    frame = pd.DataFrame([
        {"rater": "a", "kind": "gold-same", "question": q, "choice": "tie", "against_side": "left"} for q in ("OBC", "TAR", "AP")
    ] + [{"rater": "b", "kind": "gold-same", "question": q, "choice": "left", "against_side": "left"} for q in ("OBC", "TAR", "AP")]
      + [{"rater": "b", "kind": "gold-wrong", "question": q, "choice": "right", "against_side": "right"} for q in ("OBC", "TAR")])
    screen = gold_screen(frame).set_index("rater")
    assert screen.at["a", "kept"] and not screen.at["b", "kept"] and screen.at["b", "gold_share"] == pytest.approx(0.4)


def test_cli_create_simulate_export_report_and_index_pages(tmp_path, capsys):
    runs_dir = write_world_runs(tmp_path / "runs")
    assert main(["study", "create", str(runs_dir), "--methods", "base,naive", "--per-rater", "8", "--raters", "0"]) == 0
    assert main(["study", "create", str(runs_dir), "--methods", "ghost"]) == 2
    assert "Method 'ghost' was not run" in capsys.readouterr().err
    assert main(["study", "simulate", str(runs_dir), "--raters", "4", "--noise", "0.1", "--careless", "1"]) == 0
    assert main(["study", "export", str(runs_dir), "--out", str(tmp_path / "votes.csv")]) == 0
    exported = pd.read_csv(tmp_path / "votes.csv")
    con = sqlite3.connect(runs_dir / "spf-study.sqlite")
    assert len(exported) == 3 * con.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == 3 * 5 * (8 + 2)
    con.close()
    assert main(["study", "report", str(runs_dir), "--draws", "100"]) == 0
    out = capsys.readouterr().out
    assert "Win rates" in out and "Bradley-Terry" in out and (runs_dir / "study-report" / "study_chart.png").is_file()
    rates = pd.read_csv(runs_dir / "study-report" / "study_rates.csv")
    assert set(rates["competitor"]) == {"base", "naive"} and set(rates["question"]) == {"OBC", "TAR", "AP"}
    assert main(["report", str(runs_dir)]) == 0
    index = runs_dir / "report" / "index.html"
    html = index.read_text()
    assert "User study &#x27;main&#x27; (Fig. 8)" in html and "metric-human agreement" in html
    assert (index.parent / "figures" / "study1_study_chart.png").is_file()
    assert "User study" in (index.parent / "index.md").read_text()
