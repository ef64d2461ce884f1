"""Simulated raters vote over HTTP; with noise 0 the analysed win rates are the oracle's, exactly."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from support.serve_runs import METHODS, write_world_runs
from spf_bench.results.runs import load_runs
from spf_bench.study.analysis import load_votes, win_rates
from spf_bench.study.db import default_db, ensure_schema
from spf_bench.study.sampling import create_study
from spf_bench.study.simulate import simulate_study


def _direct_oracle(runs_dir, db, labels) -> pd.DataFrame:
    """The win rates straight from per_pair.csv, by the documented rules, over the raters' pair comparisons."""
    runs = load_runs(runs_dir)
    frames = {m: runs[m].per_pair.set_index("id") for m in METHODS}
    con = sqlite3.connect(db)
    rows = con.execute("SELECT c.triple_id, c.competitor FROM comparisons c JOIN raters r ON r.id=c.rater_id "
                       f"WHERE c.kind='pair' AND r.label IN ({','.join('?' * len(labels))})", labels).fetchall()
    con.close()
    records = []
    for tid, competitor in rows:
        a, b = frames["ours"].loc[tid], frames[competitor].loc[tid]
        tar = 0.5 if a["Target-Acc"] == b["Target-Acc"] else float(a["Target-Acc"] > b["Target-Acc"])
        if a["Attr-Pres"] != b["Attr-Pres"]:
            obc = float(a["Attr-Pres"] > b["Attr-Pres"])
        else:
            obc = 0.5 if abs(a["ID-Pres"] - b["ID-Pres"]) <= 0.02 else float(a["ID-Pres"] > b["ID-Pres"])
        records += [{"competitor": competitor, "question": "OBC", "direct": obc},
                    {"competitor": competitor, "question": "TAR", "direct": tar}]
    return pd.DataFrame(records).groupby(["competitor", "question"], as_index=False)["direct"].mean()


@pytest.fixture()
def world_study(tmp_path):
    runs_dir = write_world_runs(tmp_path / "runs")
    db = ensure_schema(default_db(runs_dir))
    create_study(db, load_runs(runs_dir), runs_dir, "main", "ours", ["base", "naive"], per_rater=10, raters=0)
    return runs_dir, db


def test_noise_zero_win_rates_equal_the_oracle(world_study):
    runs_dir, db = world_study
    result = simulate_study(runs_dir, db, None, raters=3, noise=0.0, draws=50)
    assert result.votes == 3 * (10 + 2)  # every comparison, gold checks included, answered over HTTP
    _study, votes = load_votes(db)
    labels = sorted(set(votes["rater"]))
    direct = _direct_oracle(runs_dir, db, labels)
    rates = win_rates(votes, draws=20).merge(direct, on=["competitor", "question"])
    assert len(rates) == 4  # base and naive, OBC and TAR
    np.testing.assert_allclose(rates["win_rate"], rates["direct"], atol=1e-12)
    np.testing.assert_allclose(result.comparison["win_rate"], result.comparison["oracle"], atol=1e-12)
    # the fixture's numbers are not degenerate: ours neither always wins nor always loses
    assert 0 < rates["win_rate"].min() < 1 and rates["win_rate"].max() > rates["win_rate"].min()
    # gold checks: an image beside itself is a tie on every question for an exact rater
    gold = votes[votes["kind"] == "gold-same"]
    assert len(gold) and (gold["choice"] == "tie").all()
    # asked again, the same simulated raters are found finished: nothing is added or re-cast
    again = simulate_study(runs_dir, db, None, raters=3, noise=0.0, draws=20)
    assert again.votes == 0 and again.raters == 3 and len(load_votes(db)[1]) == len(votes)


def test_a_killed_simulation_resumes_its_raters(world_study):
    runs_dir, db = world_study
    from spf_bench.study.sampling import add_raters

    token = add_raters(db, load_runs(runs_dir), None, 1, prefix="sim0-noise0")[0]  # as a killed run leaves it
    con = sqlite3.connect(db)
    first = con.execute("SELECT c.id FROM comparisons c JOIN raters r ON r.id=c.rater_id WHERE r.token=? "
                        "ORDER BY c.position LIMIT 1", (token,)).fetchone()[0]
    con.execute("INSERT INTO votes VALUES (?, 'tie', 'tie', 'tie', '2026-01-01')", (first,))
    con.commit()
    con.close()
    result = simulate_study(runs_dir, db, None, raters=1, noise=0.0, draws=20)
    assert result.raters == 1 and result.votes == 10 + 2 - 1


def test_noise_and_careless_raters_are_screened(world_study):
    runs_dir, db = world_study
    from spf_bench.study.agreement import gold_screen

    simulate_study(runs_dir, db, None, raters=2, noise=0.0, careless=3, seed=4, draws=20)
    _study, votes = load_votes(db)
    screen = gold_screen(votes).set_index("rater")
    exact = [r for r in screen.index if "careless" not in r]
    assert screen.loc[exact, "kept"].all() and (screen.loc[exact, "gold_share"] == 1).all()
    careless = [r for r in screen.index if "careless" in r]
    assert len(careless) == 3 and screen.loc[careless, "gold_share"].mean() < 0.75
