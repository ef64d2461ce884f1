"""SIGKILL in the middle of a study loses no committed vote, and the rater continues where they stopped."""

from __future__ import annotations

import signal
import sqlite3

import httpx
import pytest

from support.serve_runs import free_port, start_server, write_world_runs
from spf_bench.results.runs import load_runs
from spf_bench.study.db import default_db, ensure_schema
from spf_bench.study.sampling import create_study


@pytest.mark.slow
def test_sigkill_restart_keeps_every_vote(tmp_path):
    runs_dir = write_world_runs(tmp_path / "runs")
    db = ensure_schema(default_db(runs_dir))
    create_study(db, load_runs(runs_dir), runs_dir, "main", "ours", ["naive"], per_rater=8, raters=1)
    token = sqlite3.connect(db).execute("SELECT token FROM raters").fetchone()[0]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(runs_dir, port)
    cast = []
    try:
        for _ in range(5):
            comparison = httpx.get(f"{base}/rate/{token}/next.json").json()["comparison"]
            reply = httpx.post(f"{base}/rate/{token}/vote",
                               data={"comparison": comparison["id"], "OBC": "left", "TAR": "right", "AP": "tie"})
            assert reply.status_code == 303  # answered only after the commit
            cast.append(comparison["id"])
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
    assert server.returncode == -signal.SIGKILL
    con = sqlite3.connect(db)
    assert [r[0] for r in con.execute("SELECT comparison_id FROM votes ORDER BY comparison_id")] == sorted(cast)
    positions = dict(con.execute("SELECT id, position FROM comparisons"))
    con.close()
    server = start_server(runs_dir, port)
    try:
        state = httpx.get(f"{base}/rate/{token}/next.json").json()
        assert state["done"] == 5 and positions[state["comparison"]["id"]] == 5
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
