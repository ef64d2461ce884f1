"""The world Tab. 1's numbers, computed from per-image records alone.

A record is one value of one metric for one image pair: ``(seed, model, prompt, metric,
value)``, ``seed`` the training seed of the lab it comes from, ``prompt`` the prompt's index
in that lab (-1 for a set-level metric such as FID, one value per seed and model). Every
figure of the table is a function of these records, so a table can be recomputed, and
checked, from its ``records.csv``.

Intervals cover both sources of chance: the training seed (which fine-tuning set was drawn,
which noise trained the model) and the prompt. Both are resampled, seeds first and then
prompts within each drawn seed (a two-level bootstrap); scipy's bootstrap resamples one
level only, hence the few lines here. A set-level metric has only its seeds, and gets a
Student-t interval over them. A comparison with ours is paired: the same seed and prompt
on both sides, the bootstrap resampling the pairs' differences in the same two levels.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

DRAWS = 2000
CONFIDENCE = 0.95
RECORD_COLUMNS = ("seed", "model", "prompt", "metric", "value")
SET_LEVEL = -1  # the prompt index of a set-level value (FID)
# Whether the world's direction matches the paper's, where both have one (see agreement).
AGREES, CONTRADICTS, NOT_SEPARATED = "yes", "no", "not separated"
AGREEMENT = (AGREES, CONTRADICTS, NOT_SEPARATED)


def nested_bootstrap(groups: list[np.ndarray], draws: int = DRAWS, seed: int = 0) -> np.ndarray:
    """Means of ``draws`` two-level resamples: seeds with replacement, then each drawn seed's
    values with replacement; a resample's mean is the mean of its seeds' means."""
    rng = np.random.default_rng(seed)
    groups = [np.asarray(g, dtype=float) for g in groups if len(g)]
    out = np.empty(draws)
    for d in range(draws):
        picked = rng.integers(0, len(groups), len(groups))
        out[d] = np.mean([groups[i][rng.integers(0, len(groups[i]), len(groups[i]))].mean() for i in picked])
    return out


def _interval(groups: list[np.ndarray], set_level: bool) -> tuple[float, float]:
    tail = (1 - CONFIDENCE) / 2
    if set_level:
        x = np.array([g[0] for g in groups], dtype=float)
        if len(x) < 2:
            return math.nan, math.nan
        half = float(stats.t.ppf(1 - tail, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
        return float(x.mean()) - half, float(x.mean()) + half
    boot = nested_bootstrap(groups)
    return float(np.quantile(boot, tail)), float(np.quantile(boot, 1 - tail))


def _groups(frame: pd.DataFrame) -> list[np.ndarray]:
    return [g["value"].to_numpy() for _, g in frame.sort_values(["seed", "prompt"]).groupby("seed")]


def cell(records: pd.DataFrame, model: str, metric: str) -> dict:
    """One model's value of one metric: the mean over seeds of each seed's mean, its interval,
    the per-seed means and the number of records."""
    rows = records[(records["model"] == model) & (records["metric"] == metric)].dropna(subset=["value"])
    if rows.empty:
        return {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "per_seed": {}, "n": 0}
    groups = _groups(rows)
    per_seed = {int(s): float(g["value"].mean()) for s, g in rows.groupby("seed")}
    low, high = _interval(groups, bool((rows["prompt"] == SET_LEVEL).all()))
    return {"value": float(np.mean(list(per_seed.values()))), "ci_low": low, "ci_high": high,
            "per_seed": per_seed, "n": int(len(rows))}


def paired(records: pd.DataFrame, model: str, reference: str, metric: str) -> dict:
    """``model - reference`` on the records both have (same seed and prompt): mean difference,
    two-level bootstrap interval and p-value (Student-t over seeds for a set-level metric)."""
    def values(name):
        rows = records[(records["model"] == name) & (records["metric"] == metric)].dropna(subset=["value"])
        return rows.set_index(["seed", "prompt"])["value"]

    both = pd.concat({"a": values(model), "b": values(reference)}, axis=1).dropna()
    if both.empty:
        return {"mean_diff": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p": math.nan, "n": 0}
    diffs = (both["a"] - both["b"]).rename("value").reset_index()
    per_seed = diffs.groupby("seed")["value"].mean()
    mean = float(per_seed.mean())
    if bool((diffs["prompt"] == SET_LEVEL).all()):
        low, high = _interval([np.array([v]) for v in per_seed], set_level=True)
        p = float(stats.ttest_1samp(per_seed.to_numpy(), 0.0).pvalue) if len(per_seed) > 1 else math.nan
    else:
        boot = nested_bootstrap(_groups(diffs))
        tail = (1 - CONFIDENCE) / 2
        low, high = float(np.quantile(boot, tail)), float(np.quantile(boot, 1 - tail))
        p = _two_sided_p(boot)
    return {"mean_diff": mean, "ci_low": low, "ci_high": high, "p": p, "n": int(len(diffs))}


def _two_sided_p(boot: np.ndarray) -> float:
    """Twice the share of resampled means on the far side of zero, a resample exactly at zero
    counted half to each side (a mid-p: a difference that is zero on most pairs, as a yes/no
    metric's is, resamples to exactly zero often, and counting those on both sides read a
    one-sided shift as p = 1); +1 so that "never crossed" reads p < 1/draws, not 0."""
    below, above, zero = int(np.sum(boot < 0)), int(np.sum(boot > 0)), int(np.sum(boot == 0))
    return min(1.0, 2 * (min(below, above) + zero / 2 + 1) / (len(boot) + 1))


def direction(delta: float, higher_is_better: bool | None) -> str:
    """``better`` / ``worse`` than ours for a difference (model - ours), or ``higher`` /
    ``lower`` where a metric has no better side; ``same`` for exactly 0."""
    if delta is None or not math.isfinite(delta):
        return ""
    if delta == 0:
        return "same"
    if higher_is_better is None:
        return "higher" if delta > 0 else "lower"
    return "better" if (delta > 0) == higher_is_better else "worse"


def agreement(paper_direction: str, test: dict, higher_is_better: bool | None) -> tuple[str, str]:
    """(the world's direction, whether it agrees with the paper's). The world has a direction
    only where the paired interval excludes 0; otherwise the two are ``not separated``."""
    if test["n"] == 0:
        return "", "no data"
    separated = math.isfinite(test["ci_low"]) and (test["ci_low"] > 0 or test["ci_high"] < 0)
    world = direction(test["mean_diff"], higher_is_better) if separated else NOT_SEPARATED
    if not paper_direction:
        return world, "no paper value"
    if not separated:
        return world, NOT_SEPARATED
    return world, AGREES if world == paper_direction else CONTRADICTS
