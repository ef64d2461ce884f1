"""Writing a study: which comparisons each rater is shown, balanced and randomised.

Each rater gets ``per_rater`` comparisons of ``against`` with one competitor on one triple,
spread evenly over the (competitor, category) cells: the cells are visited round-robin in a
shuffled order, and each cell hands out its triples from a shuffled queue shared by all raters,
so every triple is shown about equally often and several raters see the same pairs (which the
agreement statistics need). Every comparison asks all three questions, so the questions are
balanced by construction. Which method sits on the left is drawn per comparison and stored.

Gold checks screen inattentive raters: ``gold-same`` shows ``against``'s image beside itself
(the only right answer is a tie), ``gold-wrong`` shows it beside ``against``'s image of another
triple of another category (the image of the right triple must win OBC and TAR).
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone

import numpy as np

from spf_bench.core.errors import SpfError
from spf_bench.results.runs import MethodRun
from spf_bench.study.db import connect, study_row


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def gold_count(per_rater: int) -> int:
    """Gold checks per rater: one per ten comparisons, at least two (one of each kind)."""
    return max(2, per_rater // 10)


def shared_triples(runs: dict[str, MethodRun], methods: list[str]) -> dict[str, str]:
    """Triple id -> category for the triples every named method produced an image of."""
    common: dict[str, str] | None = None
    for method in methods:
        run = runs[method]
        if run.per_pair is None:
            raise SpfError(f"The run of '{method}' has no per_pair.csv, so the study cannot pick its triples.")
        have = {str(r.id): str(r.category) for r in run.per_pair.itertuples() if run.image_path(str(r.id))}
        common = have if common is None else {t: c for t, c in common.items() if t in have}
    if not common:
        raise SpfError(f"No triple has an image from every one of {', '.join(methods)}.")
    return dict(sorted(common.items()))


def check_methods(runs: dict[str, MethodRun], against: str, competitors: list[str]) -> None:
    for name in [against, *competitors]:
        if name not in runs:
            raise SpfError(f"Method '{name}' was not run; the runs are {', '.join(sorted(runs))}.")
    if not competitors:
        raise SpfError("Name at least one competitor with --methods.")
    if against in competitors:
        raise SpfError(f"'{against}' is the method compared against; leave it out of --methods.")


def create_study(db, runs: dict[str, MethodRun], runs_dir, name: str, against: str, competitors: list[str],
                 per_rater: int, raters: int, seed: int = 0) -> int:
    check_methods(runs, against, competitors)
    if per_rater < 1:
        raise SpfError(f"--per-rater must be at least 1, not {per_rater}.")
    shared_triples(runs, [against, *competitors])
    with connect(db, write=True) as connection:
        if connection.execute("SELECT 1 FROM studies WHERE name=?", (name,)).fetchone():
            raise SpfError(f"A study named '{name}' already exists in {db}; choose another --name.")
        cursor = connection.execute(
            "INSERT INTO studies (name, against, methods, per_rater, seed, runs_dir, created) VALUES (?,?,?,?,?,?,?)",
            (name, against, json.dumps(competitors), per_rater, seed, str(runs_dir), now()))
        study_id = cursor.lastrowid
    add_raters(db, runs, name, raters)
    return study_id


def _plan(study, triples: dict[str, str], start: int, count: int) -> list[list[tuple]]:
    """Comparisons of raters ``start .. start+count-1``: a pure function of the study's seed."""
    against, competitors = study["against"], json.loads(study["methods"])
    rng = np.random.default_rng(int(study["seed"]))
    categories = sorted(set(triples.values()))
    cells = [(m, c) for m in competitors for c in categories]
    queues = {c: [t for t, k in triples.items() if k == c] for c in categories}
    order = [cells[i] for i in rng.permutation(len(cells))]
    pointer = {cell: 0 for cell in cells}
    shuffled = {cell: [queues[cell[1]][i] for i in rng.permutation(len(queues[cell[1]]))] for cell in cells}
    plans, step = [], 0
    for rater in range(start + count):
        items = []
        for _ in range(int(study["per_rater"])):
            competitor, category = order[step % len(order)]
            step += 1
            queue = shuffled[(competitor, category)]
            triple = queue[pointer[(competitor, category)] % len(queue)]
            pointer[(competitor, category)] += 1
            items.append(("pair", triple, category, competitor))
        for g in range(gold_count(int(study["per_rater"]))):
            triple = list(triples)[int(rng.integers(len(triples)))]
            items.append(("gold-same" if g % 2 == 0 else "gold-wrong", triple, triples[triple], against))
        items = [items[i] for i in rng.permutation(len(items))]
        rows = []
        for kind, triple, category, competitor in items:
            other_method, other_triple = competitor, triple
            if kind == "gold-same":
                other_method = against
            elif kind == "gold-wrong":
                others = [t for t, k in triples.items() if k != category] or [t for t in triples if t != triple]
                if not others:
                    raise SpfError("A gold check needs a second triple to show as the wrong image; the runs share only one.")
                other_method, other_triple = against, others[int(rng.integers(len(others)))]
            sides = [(against, triple), (other_method, other_triple)]
            if rng.random() < 0.5:
                sides.reverse()
            rows.append((kind, triple, category, competitor, *sides[0], *sides[1]))
        if rater >= start:
            plans.append(rows)
    return plans


def add_raters(db, runs: dict[str, MethodRun], study_name: str | None, count: int, prefix: str = "rater") -> list[str]:
    """Add ``count`` raters with their assignments; returns their tokens."""
    with connect(db, write=True) as connection:
        study = study_row(connection, study_name)
        triples = shared_triples(runs, [study["against"], *json.loads(study["methods"])])
        start = connection.execute("SELECT COUNT(*) FROM raters WHERE study_id=?", (study["id"],)).fetchone()[0]
        tokens = []
        for offset, rows in enumerate(_plan(study, triples, start, count)):
            token = secrets.token_urlsafe(12)
            cursor = connection.execute("INSERT INTO raters (study_id, token, label, created) VALUES (?,?,?,?)",
                                        (study["id"], token, f"{prefix}-{start + offset + 1}", now()))
            connection.executemany(
                "INSERT INTO comparisons (rater_id, position, kind, triple_id, category, competitor, left_method, "
                "left_triple, right_method, right_triple) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(cursor.lastrowid, position, *row) for position, row in enumerate(rows)])
            tokens.append(token)
    return tokens
