"""A study's assignments: balanced over competitors and categories, sides randomised, gold checks of both kinds."""

from __future__ import annotations

import sqlite3
from collections import Counter

import pytest

from spf_bench.core.errors import SpfError
from spf_bench.results.runs import load_runs
from spf_bench.study.db import SCHEMA_VERSION, default_db, ensure_schema
from spf_bench.study.sampling import create_study
from support.serve_runs import CATEGORIES, write_world_runs


def test_each_rater_sees_every_cell_equally_and_sides_are_random(tmp_path):
    runs_dir = write_world_runs(tmp_path / "runs")
    db = ensure_schema(default_db(runs_dir))
    cells = 2 * len(CATEGORIES)
    create_study(db, load_runs(runs_dir), runs_dir, "main", "ours", ["base", "naive"], per_rater=2 * cells, raters=6)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    rows = con.execute("SELECT rater_id, kind, category, competitor, left_method, left_triple, right_method, right_triple, "
                       "triple_id FROM comparisons").fetchall()
    con.close()
    for rater in {r[0] for r in rows}:
        mine = [r for r in rows if r[0] == rater]
        pairs = Counter((r[3], r[2]) for r in mine if r[1] == "pair")
        assert len(pairs) == cells and set(pairs.values()) == {2}  # every (competitor, category) twice
        assert Counter(r[1] for r in mine if r[1] != "pair") == {"gold-same": 1, "gold-wrong": 1}
    pairs = [r for r in rows if r[1] == "pair"]
    left_ours = sum(r[4] == "ours" for r in pairs) / len(pairs)
    assert 0.35 < left_ours < 0.65  # which side 'ours' is on is drawn, not fixed
    assert all({r[4], r[6]} == {"ours", r[3]} and r[5] == r[7] == r[8] for r in pairs)
    wrong = [r for r in rows if r[1] == "gold-wrong"]
    assert all(r[5] != r[7] and (r[8] in (r[5], r[7])) for r in wrong)  # the wrong image is of another triple
    shown = Counter(r[8] for r in pairs)
    assert max(shown.values()) - min(shown.values()) <= 2  # triples are shown about equally often


def test_create_refuses_bad_requests_with_one_sentence(tmp_path):
    runs_dir = write_world_runs(tmp_path / "runs")
    db = ensure_schema(default_db(runs_dir))
    runs = load_runs(runs_dir)
    for competitors, against, message in ((["ghost"], "ours", "Method 'ghost' was not run"),
                                          (["ours"], "ours", "leave it out of --methods"),
                                          ([], "ours", "at least one competitor")):
        with pytest.raises(SpfError, match=message):
            create_study(db, runs, runs_dir, "x", against, competitors, per_rater=4, raters=1)
    create_study(db, runs, runs_dir, "x", "ours", ["naive"], per_rater=4, raters=1)
    with pytest.raises(SpfError, match="already exists"):
        create_study(db, runs, runs_dir, "x", "ours", ["naive"], per_rater=4, raters=1)
    other = tmp_path / "old.sqlite"
    sqlite3.connect(other).executescript("CREATE TABLE meta (key TEXT, value TEXT); INSERT INTO meta VALUES ('schema_version', '99');")
    with pytest.raises(SpfError, match="schema version 99"):
        ensure_schema(other)
