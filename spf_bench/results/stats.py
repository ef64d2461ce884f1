"""Intervals for a metric's mean, and the paired test that tells a real gain from noise.

A mean computed here (a per-category mean, or a run's mean when its ``summary.json`` holds no
matching interval) gets the interval the evaluator gives a run's means
(:func:`spf_bench.metrics.bootstrap.pair_interval`): a percentile bootstrap of the mean, which
stays inside the metric's range, or Wilson's for a rate. Its resamples come from a fixed seed,
so a table is the same every time it is built. (A Student-t interval, mean ± t·sd/√n, was used
before: symmetric, it left the range on small categories, 1 hit of 12 giving [-0.100, 0.267].)
The paired test compares two methods on the *same* triples, so each triple's difficulty cancels
out: it reports a paired bootstrap interval and p-value for the mean difference and, as a
rank-based check that does not assume a shape, the Wilcoxon signed-rank p-value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from spf_bench.metrics import bootstrap, registry
from spf_bench.metrics.base import UNBOUNDED

CONFIDENCE = 0.95
BOOTSTRAP_DRAWS = 2000
BOOTSTRAP_SEED = 0
INTERVAL_DRAWS = 1000  # the evaluator's default resamples for a run's means
_CHUNK = 250  # bootstrap draws per block, so 5,000 triples never need a 10M-entry index array


@dataclass(frozen=True)
class MeanCI:
    value: float
    ci_low: float
    ci_high: float
    n: int


def mean_ci(values: pd.Series | np.ndarray, metric: str | None = None, draws: int = INTERVAL_DRAWS,
            seed: int = BOOTSTRAP_SEED, confidence: float = CONFIDENCE) -> MeanCI:
    """Mean of the finite values with the 95% interval of ``metric`` (a known metric's range and
    kind; otherwise an unbounded mean); NaN where there is nothing to average. NaN values stay in
    the resampled rows and are left out of each resample's mean, as in the evaluator."""
    x = np.asarray(values, dtype=float)
    finite = x[np.isfinite(x)]
    n = int(finite.size)
    if n == 0:
        return MeanCI(math.nan, math.nan, math.nan, 0)
    cls = registry.metrics().get(metric) if metric else None
    value_range, rate = (cls.value_range, cls.rate) if cls is not None else (UNBOUNDED, False)
    indices = bootstrap.resample_indices(x.size, draws, seed)
    low, high = bootstrap.pair_interval(x, indices, value_range, rate, confidence)
    return MeanCI(float(finite.mean()), low, high, n)


def bootstrap_mean_diff(diffs: np.ndarray, draws: int = BOOTSTRAP_DRAWS, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """Means of ``draws`` resamples (with replacement) of the paired differences."""
    rng = np.random.default_rng(seed)
    n = diffs.size
    out = np.empty(draws)
    for start in range(0, draws, _CHUNK):
        stop = min(start + _CHUNK, draws)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = diffs[idx].mean(axis=1)
    return out


def _wilcoxon_p(diffs: np.ndarray) -> float:
    if diffs.size == 0:
        return math.nan
    if not np.any(diffs != 0):
        return 1.0  # identical scores: no evidence of a difference, and scipy cannot rank all-zero differences
    nonzero = diffs[diffs != 0]
    # Exact null distribution for small samples without ties; otherwise the normal approximation.
    # (Left to itself, scipy falls back to a permutation test on tied small samples, which costs
    # a third of a second per metric and pair of methods.)
    exact = nonzero.size <= 50 and np.unique(np.abs(nonzero)).size == nonzero.size
    method = "exact" if exact else "asymptotic"
    return float(stats.wilcoxon(diffs, zero_method="wilcox", alternative="two-sided", method=method).pvalue)


def paired_difference(a: np.ndarray, b: np.ndarray, draws: int = BOOTSTRAP_DRAWS, seed: int = BOOTSTRAP_SEED,
                      confidence: float = CONFIDENCE) -> dict:
    """Test ``mean(b - a) == 0`` on paired scores (NaN pairs already removed)."""
    diffs = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    n = int(diffs.size)
    if n == 0:
        return {"n": 0, "mean_diff": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "p_bootstrap": math.nan, "p_wilcoxon": math.nan}
    boot = bootstrap_mean_diff(diffs, draws, seed)
    tail = (1 - confidence) / 2
    # Two-sided bootstrap p-value: twice the share of resampled means on the far side of zero,
    # counted with +1 so that "never crossed zero" reads as p < 1/draws rather than an exact 0.
    below, above = int(np.sum(boot <= 0)), int(np.sum(boot >= 0))
    p_boot = min(1.0, 2 * (min(below, above) + 1) / (draws + 1))
    return {
        "n": n,
        "mean_diff": float(diffs.mean()),
        "ci_low": float(np.quantile(boot, tail)),
        "ci_high": float(np.quantile(boot, 1 - tail)),
        "p_bootstrap": p_boot,
        "p_wilcoxon": _wilcoxon_p(diffs),
    }
