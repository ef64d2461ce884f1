"""Who to trust and what agrees: gold-check screening, inter-rater agreement, metric-human agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spf_bench.results.runs import MethodRun
from spf_bench.results.tables import METRIC_BY_NAME, PER_PAIR_METRICS
from spf_bench.study.analysis import BOOTSTRAP_DRAWS, _interval, in_question_order

GOLD_PASS = 0.75  # a rater who gets fewer than three in four gold answers right is dropped
GOLD_QUESTIONS = {"gold-same": ("OBC", "TAR", "AP"), "gold-wrong": ("OBC", "TAR")}


def gold_screen(votes: pd.DataFrame) -> pd.DataFrame:
    """Per rater: gold answers checked, right, the share right and whether the rater is kept.

    ``gold-same`` shows one image twice: only a tie is right, on every question. ``gold-wrong``
    shows the right triple's image against another triple's: the right one must win OBC and TAR
    (AP is taste and not checked). A rater who answered no gold check yet is kept.
    """
    rows = []
    for rater, group in votes.groupby("rater", sort=True):
        checked = right = 0
        for kind, questions in GOLD_QUESTIONS.items():
            gold = group[(group["kind"] == kind) & group["question"].isin(questions)]
            checked += len(gold)
            expected = "tie" if kind == "gold-same" else gold["against_side"]
            right += int((gold["choice"] == expected).sum())
        share = right / checked if checked else float("nan")
        rows.append({"rater": rater, "gold_checked": checked, "gold_right": right, "gold_share": share,
                     "kept": bool(not checked or share >= GOLD_PASS)})
    return pd.DataFrame(rows, columns=["rater", "gold_checked", "gold_right", "gold_share", "kept"])


def kept_votes(votes: pd.DataFrame, screen: pd.DataFrame) -> pd.DataFrame:
    kept = set(screen.loc[screen["kept"], "rater"])
    return votes[votes["rater"].isin(kept) & (votes["kind"] == "pair")]


def rater_agreement(votes: pd.DataFrame) -> pd.DataFrame:
    """Krippendorff's alpha (nominal: against wins, tie, competitor wins) per question and overall.

    A unit is one (triple, competitor, question); alpha needs units seen by two raters or more
    and is NaN (with the count of such units at 0) when none is.
    """
    import krippendorff

    rows = []
    for question in [*sorted(set(votes["question"])), "all"]:
        part = votes if question == "all" else votes[votes["question"] == question]
        units = part.groupby(["triple", "competitor", "question"])["rater"].nunique()
        shared = int((units >= 2).sum())
        alpha = float("nan")
        if shared and part["rater"].nunique() >= 2:
            table = part.pivot_table(index="rater", columns=["triple", "competitor", "question"], values="outcome",
                                     aggfunc="last")
            codes = table.to_numpy(dtype=float) * 2  # 0, 1, 2: nominal categories
            if np.unique(codes[np.isfinite(codes)]).size > 1:
                alpha = float(krippendorff.alpha(reliability_data=codes, level_of_measurement="nominal"))
            else:
                alpha = 1.0  # every rater gave the same answer everywhere: perfect agreement
        rows.append({"question": question, "alpha": alpha, "units_shared": shared, "raters": part["rater"].nunique()})
    return in_question_order(pd.DataFrame(rows, columns=["question", "alpha", "units_shared", "raters"]), [])


def _metric_preference(a: float, b: float, higher_is_better: bool) -> float:
    """1 when the metric prefers ``against``'s image (value a), 0 the competitor's, 0.5 equal, NaN unknown."""
    if not (np.isfinite(a) and np.isfinite(b)):
        return float("nan")
    if a == b:
        return 0.5
    return float((a > b) == higher_is_better)


def metric_agreement(votes: pd.DataFrame, runs: dict[str, MethodRun], against: str,
                     draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> pd.DataFrame:
    """How often each metric's pairwise preference matches the raters' majority, per question.

    The majority of a (triple, competitor, question) unit is the side whose mean outcome is
    above or below one half; a split unit has no majority and is left out. A metric that scores
    the two images equal agrees by half. The interval resamples triples.
    """
    majority = votes.groupby(["triple", "competitor", "question"])["outcome"].mean().reset_index()
    majority = majority[majority["outcome"] != 0.5]
    majority["human"] = (majority["outcome"] > 0.5).astype(float)
    rng = np.random.default_rng(seed)
    rows = []
    for metric in PER_PAIR_METRICS:
        if not all(r.per_pair is not None and metric.name in r.per_pair.columns for r in runs.values()):
            continue
        values = {m: r.per_pair.set_index("id")[metric.name] for m, r in runs.items()}
        prefer = [_metric_preference(float(values[against].get(t, np.nan)), float(values[c].get(t, np.nan)),
                                     metric.higher_is_better) for t, c in zip(majority["triple"], majority["competitor"])]
        frame = majority.assign(metric=np.array(prefer, dtype=float))
        frame = frame[np.isfinite(frame["metric"])]
        for question in sorted(set(frame["question"])):
            part = frame[frame["question"] == question]
            agree = 1.0 - np.abs(part["metric"].to_numpy() - part["human"].to_numpy())
            codes, unique = pd.factorize(part["triple"])
            counts = rng.multinomial(len(unique), np.full(len(unique), 1 / len(unique)), size=draws)[:, codes]
            with np.errstate(invalid="ignore", divide="ignore"):
                boot = (counts @ agree) / counts.sum(axis=1)
            low, high = _interval(boot)
            rows.append({"metric": f"{metric.name} {METRIC_BY_NAME[metric.name].arrow}", "question": question,
                         "units": len(part), "agreement": float(agree.mean()), "ci_low": low, "ci_high": high})
    frame = pd.DataFrame(rows, columns=["metric", "question", "units", "agreement", "ci_low", "ci_high"])
    order = {f"{m.name} {m.arrow}": i for i, m in enumerate(PER_PAIR_METRICS)}
    return in_question_order(frame.assign(_m=frame["metric"].map(order)), ["_m"]).drop(columns="_m")


def metric_human_wide(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per metric, one column per question: 'agreement [low, high] (n units)', to read at a glance."""
    if frame.empty:
        return frame
    cells = frame.assign(cell=[f"{a:.2f} [{lo:.2f}, {hi:.2f}] (n={n})" for a, lo, hi, n in
                               zip(frame["agreement"], frame["ci_low"], frame["ci_high"], frame["units"])])
    wide = cells.pivot(index="metric", columns="question", values="cell")
    wide = wide.reindex(index=list(dict.fromkeys(frame["metric"])), columns=[q for q in ("OBC", "TAR", "AP") if q in wide.columns])
    return wide.fillna("–").reset_index().rename_axis(columns=None)
