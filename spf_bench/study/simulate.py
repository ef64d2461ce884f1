"""Simulated raters: new raters added to a study who vote through the app's HTTP endpoints.

Each one does what a browser does: reads its next comparison (``/rate/TOKEN/next.json``, the
data of the rating page), fetches the three images over HTTP, and posts the rating form to
``/rate/TOKEN/vote``. The answers come from the synthetic world's ground truth
(:mod:`.world_truth`); with chance ``noise`` each answer is instead drawn at random among
left, right and tie. Careless raters answer at random throughout, so the gold checks have
someone to catch. Without ``url`` the app is started on loopback in this process.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from spf_bench.core.errors import SpfError
from spf_bench.core.progress import progress_bar
from spf_bench.results.runs import load_runs
from spf_bench.study.analysis import load_votes, win_rates
from spf_bench.study.db import CHOICES, QUESTIONS, connect, study_row
from spf_bench.study.sampling import add_raters
from spf_bench.study.world_truth import Truth, by_bytes, outcome, prefer, truths

WORKERS = 8


@dataclass
class SimulationResult:
    raters: int
    votes: int
    seconds: float
    comparison: pd.DataFrame  # competitor, question, simulated win rate, oracle's, n


@contextmanager
def local_server(runs_dir: Path, db: Path):
    """The app on a free loopback port, in a background thread, for the duration of the block."""
    import uvicorn

    from spf_bench.serve.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(runs_dir, db), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise SpfError("The local study server did not start within 30 seconds.")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def rate_all(client, base: str, token: str, seen: dict[str, dict[str, Truth]], noise: float,
             rng: np.random.Generator, bar=None) -> int:
    """One rater from the first comparison to the last; returns the number of votes the server stored."""
    stored = 0
    while True:
        page = client.get(f"{base}/rate/{token}/next.json")
        page.raise_for_status()
        comparison = page.json()["comparison"]
        if comparison is None:
            return stored
        known = seen.get(comparison["triple"], {})
        sides = []
        for side in ("left", "right"):
            image = client.get(f"{base}{comparison[side]}")
            image.raise_for_status()
            sides.append(known.get(hashlib.sha256(image.content).hexdigest()))
        form = {"comparison": str(comparison["id"])}
        for question in QUESTIONS:
            answer = prefer(question, *sides)
            form[question] = CHOICES[int(rng.integers(3))] if rng.random() < noise else answer
        reply = client.post(f"{base}/rate/{token}/vote", data=form)
        if reply.status_code != 303:
            raise SpfError(f"The server refused a simulated vote ({reply.status_code}): {reply.text[:200]}")
        stored += 1
        if bar is not None:
            bar.update()


def oracle_rates(db, study_name: str | None, table: dict[str, dict[str, Truth]], labels: list[str]) -> pd.DataFrame:
    """The oracle's win rates over the pair comparisons assigned to ``labels``, computed without any vote."""
    with connect(db) as connection:
        study = study_row(connection, study_name)
        marks = ",".join("?" * len(labels))
        rows = connection.execute(
            f"SELECT c.triple_id, c.competitor FROM comparisons c JOIN raters r ON r.id = c.rater_id "
            f"WHERE r.study_id=? AND c.kind='pair' AND r.label IN ({marks})", (study["id"], *labels)).fetchall()
    records = [{"competitor": r["competitor"], "question": q,
                "oracle": outcome(q, table[study["against"]].get(r["triple_id"]), table[r["competitor"]].get(r["triple_id"]))}
               for r in rows for q in QUESTIONS]
    return pd.DataFrame(records).groupby(["competitor", "question"], as_index=False)["oracle"].mean()


def simulate_study(runs_dir, db, study_name: str | None, raters: int, noise: float, careless: int = 0,
                   url: str | None = None, seed: int = 0, draws: int = 200) -> SimulationResult:
    import httpx

    if not 0.0 <= noise <= 1.0:
        raise SpfError(f"--noise is a probability between 0 and 1, not {noise}.")
    if raters < 1:
        raise SpfError(f"--raters must be at least 1, not {raters}.")
    runs_dir = Path(runs_dir)
    runs = load_runs(runs_dir)
    from spf_bench.results.runs import find_triple_set

    triple_set = find_triple_set(runs, runs_dir)
    captions = {t.id: t.target_caption for t in (triple_set.triples if triple_set else [])}
    table = truths(runs, captions)
    seen = by_bytes(runs, table)
    tokens = _simulated(db, runs, study_name, raters, f"sim{seed}-noise{noise:g}")
    careful = len(tokens)
    tokens += _simulated(db, runs, study_name, careless, f"sim{seed}-careless")
    with connect(db) as connection:
        labels = [connection.execute("SELECT label FROM raters WHERE token=?", (t,)).fetchone()["label"] for t in tokens]
    noises = [noise] * careful + [1.0] * careless
    start = time.monotonic()
    server = local_server(runs_dir, db) if url is None else _given(url)
    with connect(db) as connection:
        total = connection.execute(f"SELECT COUNT(*) FROM comparisons c JOIN raters r ON r.id = c.rater_id "
                                   f"WHERE r.token IN ({','.join('?' * len(tokens))}) AND NOT EXISTS "
                                   "(SELECT 1 FROM votes v WHERE v.comparison_id = c.id)", tokens).fetchone()[0]
    with server as base, httpx.Client(timeout=30, follow_redirects=False) as client, \
            progress_bar(total=total, desc="simulated votes", unit="vote") as bar:
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(tokens))) as pool:
            jobs = [pool.submit(rate_all, client, base, token, seen, p, np.random.default_rng([seed, i]), bar)
                    for i, (token, p) in enumerate(zip(tokens, noises))]
            votes = sum(job.result() for job in jobs)
    seconds = time.monotonic() - start
    study, cast = load_votes(db, study_name)
    mine = cast[cast["rater"].isin(labels[:careful])]
    rates = win_rates(mine, draws=draws, seed=seed)[["competitor", "question", "n", "win_rate", "ci_low", "ci_high"]]
    merged = rates.merge(oracle_rates(db, study_name, table, labels[:careful]), on=["competitor", "question"], how="left")
    return SimulationResult(len(tokens), votes, seconds, merged)


def _simulated(db, runs, study_name: str | None, count: int, prefix: str) -> list[str]:
    """Tokens of ``count`` simulated raters of this kind: those a killed run left (they resume
    where they stopped), topped up with new ones; a finished run asked again adds nothing."""
    if count <= 0:
        return []
    with connect(db) as connection:
        study = study_row(connection, study_name)
        have = [r["token"] for r in connection.execute(
            "SELECT token FROM raters WHERE study_id=? AND label LIKE ? ORDER BY id", (study["id"], f"{prefix}-%"))]
    return have[:count] + (add_raters(db, runs, study_name, count - len(have), prefix=prefix) if len(have) < count else [])


@contextmanager
def _given(url: str):
    yield url.rstrip("/")
