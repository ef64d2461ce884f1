"""Paired significance tests between methods on the triples both scored."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from spf_bench.core.errors import SpfError
from spf_bench.results.columns import Metric, per_pair_columns
from spf_bench.results.runs import MethodRun
from spf_bench.results.stats import paired_difference

SIGNIFICANCE_LEVEL = 0.05


def compare_methods(a: MethodRun, b: MethodRun, metrics: tuple[Metric, ...] | None = None, draws: int = 2000,
                    seed: int = 0, alpha: float = SIGNIFICANCE_LEVEL) -> pd.DataFrame:
    """Paired test per metric of ``b`` against ``a`` on the triples both scored.

    ``mean_diff`` is mean(b - a). A difference counts as significant only when the paired
    bootstrap and the Wilcoxon test both put it below ``alpha``: two tests with different
    assumptions agreeing is a cheap guard against a lucky resample or a skewed distribution.
    Set-level metrics (FID, KID ...) are values of the whole set and have no pairs, so they are not tested here.
    """
    sha_a, sha_b = a.identity.get("triples_sha256"), b.identity.get("triples_sha256")
    if sha_a and sha_b and sha_a != sha_b:
        raise SpfError(f"'{a.method}' and '{b.method}' were run on different triple sets; a paired test needs the same triples.")
    if a.per_pair is None or b.per_pair is None:
        missing = a.method if a.per_pair is None else b.method
        raise SpfError(f"'{missing}' has no per_pair.csv, which the paired test needs.")
    merged = a.per_pair.merge(b.per_pair, on="id", suffixes=("_a", "_b"))
    if merged.empty:
        raise SpfError(f"'{a.method}' and '{b.method}' share no triple ids.")
    records = []
    for metric in metrics if metrics is not None else per_pair_columns():
        if metric.name not in a.per_pair.columns or metric.name not in b.per_pair.columns:
            continue
        x = pd.to_numeric(merged[f"{metric.name}_a"], errors="coerce").to_numpy(dtype=float)
        y = pd.to_numeric(merged[f"{metric.name}_b"], errors="coerce").to_numpy(dtype=float)
        keep = np.isfinite(x) & np.isfinite(y)
        result = paired_difference(x[keep], y[keep], draws=draws, seed=seed)
        significant = bool(result["p_bootstrap"] < alpha and result["p_wilcoxon"] < alpha)
        gain = result["mean_diff"] if metric.higher_is_better else -result["mean_diff"]
        verdict = (f"{b.method} better" if gain > 0 else f"{a.method} better") if significant else "no significant difference"
        records.append({"metric": metric.name, "direction": metric.arrow, "method_a": a.method, "method_b": b.method,
                        "mean_a": float(np.mean(x[keep])) if keep.any() else math.nan,
                        "mean_b": float(np.mean(y[keep])) if keep.any() else math.nan,
                        **result, "significant": significant, "verdict": verdict})
    return pd.DataFrame.from_records(records)
