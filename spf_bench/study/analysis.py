"""The study's numbers: win rates with a two-way bootstrap and Bradley-Terry strengths.

Votes become one row per (comparison, question) with ``outcome`` from ``against``'s side:
1 when it won, 0.5 for a tie, 0 when the competitor won (ties count half, as in the paper's
reading of Fig. 8 and in pairwise arenas).

Intervals resample raters and triples at once (a two-way cluster bootstrap): a draw gives each
rater and each triple a multiplicity from a multinomial and weighs each vote by the product, so
both a rater who always picks the left image and a triple that is easy for everyone widen the
interval, as they should.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from spf_bench.study.db import QUESTIONS, connect, study_row

BOOTSTRAP_DRAWS = 2000
BT_DRAWS = 200
BT_ALPHA = 0.01  # choix's regulariser: keeps strengths finite when one side won every vote


def load_votes(db, study_name: str | None = None) -> tuple[dict, pd.DataFrame]:
    """The study's settings and one row per (vote, question); gold rows keep ``kind`` and ``correct``."""
    with connect(db) as connection:
        study = dict(study_row(connection, study_name))
        rows = connection.execute(
            "SELECT r.label AS rater, c.id AS comparison, c.kind, c.triple_id AS triple, c.category, c.competitor, "
            "c.left_method, c.left_triple, c.right_method, c.right_triple, v.obc, v.tar, v.ap, v.cast_at "
            "FROM votes v JOIN comparisons c ON c.id = v.comparison_id JOIN raters r ON r.id = c.rater_id "
            "WHERE r.study_id = ? ORDER BY v.cast_at, c.id", (study["id"],)).fetchall()
    study["methods"] = json.loads(study["methods"])
    records = []
    for row in rows:
        against_side = "left" if (row["left_method"], row["left_triple"]) == (study["against"], row["triple"]) else "right"
        for question in QUESTIONS:
            choice = row[question.lower()]
            outcome = 0.5 if choice == "tie" else float(choice == against_side)
            records.append({"rater": row["rater"], "comparison": row["comparison"], "kind": row["kind"],
                            "triple": row["triple"], "category": row["category"], "competitor": row["competitor"],
                            "question": question, "choice": choice, "against_side": against_side, "outcome": outcome})
    columns = ["rater", "comparison", "kind", "triple", "category", "competitor", "question", "choice",
               "against_side", "outcome"]
    return study, pd.DataFrame(records, columns=columns)


def cluster_weights(raters: np.ndarray, triples: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """[draws, n] weights of a two-way bootstrap over the unique raters and triples of n rows."""
    r_codes, r_unique = pd.factorize(raters)
    t_codes, t_unique = pd.factorize(triples)
    r_counts = rng.multinomial(len(r_unique), np.full(len(r_unique), 1 / len(r_unique)), size=draws)
    t_counts = rng.multinomial(len(t_unique), np.full(len(t_unique), 1 / len(t_unique)), size=draws)
    return (r_counts[:, r_codes] * t_counts[:, t_codes]).astype(float)


def _interval(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def win_rates(votes: pd.DataFrame, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> pd.DataFrame:
    """Per competitor and question: wins, ties, losses of ``against`` and its win rate with a 95% interval."""
    pairs = votes[votes["kind"] == "pair"]
    rows = []
    rng = np.random.default_rng(seed)
    for (competitor, question), group in pairs.groupby(["competitor", "question"], sort=True):
        outcome = group["outcome"].to_numpy()
        weights = cluster_weights(group["rater"].to_numpy(), group["triple"].to_numpy(), draws, rng)
        totals = weights.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = (weights @ outcome) / totals
        low, high = _interval(boot)
        rows.append({"competitor": competitor, "question": question, "n": len(group),
                     "raters": group["rater"].nunique(), "triples": group["triple"].nunique(),
                     "wins": int((outcome == 1).sum()), "ties": int((outcome == 0.5).sum()),
                     "losses": int((outcome == 0).sum()), "win_rate": float(outcome.mean()),
                     "ci_low": low, "ci_high": high})
    frame = pd.DataFrame(rows, columns=["competitor", "question", "n", "raters", "triples", "wins", "ties", "losses",
                                        "win_rate", "ci_low", "ci_high"])
    return in_question_order(frame, ["competitor"])


def in_question_order(frame: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    """Rows ordered as the paper asks: OBC, TAR, AP (then anything else, such as 'all')."""
    rank = {q: i for i, q in enumerate(QUESTIONS)}
    key = frame["question"].map(lambda q: rank.get(q, len(rank)))
    return frame.assign(_q=key).sort_values([*first, "_q"], kind="stable").drop(columns="_q").reset_index(drop=True)


def _bt_fit(methods: list[str], first: np.ndarray, second: np.ndarray, outcome: np.ndarray, weights: np.ndarray) -> np.ndarray:
    import choix

    wins = np.zeros((len(methods), len(methods)))
    np.add.at(wins, (first, second), weights * outcome)  # a tie adds half a win to each side
    np.add.at(wins, (second, first), weights * (1 - outcome))
    strengths = choix.ilsr_pairwise_dense(wins, alpha=BT_ALPHA)
    return strengths - strengths[0]  # the first method (against) is the zero of the scale


def bradley_terry(votes: pd.DataFrame, against: str, draws: int = BT_DRAWS, seed: int = 0) -> pd.DataFrame:
    """Bradley-Terry log-strengths of every method per question, ``against`` fixed at 0, with 95% intervals.

    The fit (choix's iterative Luce spectral ranking on the matrix of wins, ties as half a win
    each way) uses every pair vote; the interval refits on the same two-way bootstrap draws.
    """
    pairs = votes[votes["kind"] == "pair"]
    methods = [against, *sorted(set(pairs["competitor"]))]
    index = {m: i for i, m in enumerate(methods)}
    rng = np.random.default_rng(seed)
    rows = []
    for question, group in pairs.groupby("question", sort=False):
        first = np.zeros(len(group), dtype=int)
        second = group["competitor"].map(index).to_numpy()
        outcome = group["outcome"].to_numpy()
        point = _bt_fit(methods, first, second, outcome, np.ones(len(group)))
        weights = cluster_weights(group["rater"].to_numpy(), group["triple"].to_numpy(), draws, rng)
        boot = np.array([_bt_fit(methods, first, second, outcome, w) for w in weights if w.sum() > 0])
        for i, method in enumerate(methods):
            low, high = _interval(boot[:, i]) if len(boot) else (float("nan"), float("nan"))
            rows.append({"question": question, "method": method, "strength": float(point[i]),
                         "ci_low": low, "ci_high": high})
    frame = pd.DataFrame(rows, columns=["question", "method", "strength", "ci_low", "ci_high"])
    frame["question"] = pd.Categorical(frame["question"], QUESTIONS, ordered=True)
    return frame.sort_values(["question", "strength"], ascending=[True, False]).reset_index(drop=True)
