"""Aggregation: per-pair values into means, paired-bootstrap 95% intervals (set-level metrics
recomputed on each resample, a rate's by Wilson, each inside its metric's declared range), a
per-category breakdown, the face-found rate and a record per score; and the rows of
``per_pair.csv``."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable

import numpy as np
import torch

from spf_bench.evaluation.options import EvalOptions
from spf_bench.evaluation.records import metric_record, with_fingerprint
from spf_bench.evaluation.scoring import Scores
from spf_bench.metrics import bootstrap, registry

PAIR_INFO, PAIR_NOTES = ("id", "category"), ("face_found", "reason")


def per_pair_columns(metrics: Iterable[str] = ()) -> tuple[str, ...]:
    """``per_pair.csv``'s columns: the paper's per-pair metrics always (empty when not scored),
    then any other scored per-pair metric (the world's, plug-ins') in the suite's order."""
    scored = set(metrics)
    names = [n for n, cls in registry.metrics().items() if cls.per_pair and (cls.in_paper or n in scored)]
    return (*PAIR_INFO, *names, *PAIR_NOTES)


def _set_entry(name: str, cls, scores: Scores, options: EvalOptions, indices: np.ndarray) -> dict:
    n = len(scores.pairs)
    resamples = indices[: options.fid_bootstrap]
    low = high = math.nan
    if n >= cls.min_pairs:
        fo, fc = (torch.as_tensor(f, dtype=torch.float64) for f in scores.set_features[name])
        statistics = cls.resampled_values(fo, fc, torch.as_tensor(resamples))
        low, high = bootstrap.percentile_interval(statistics)
        if cls.recentre_interval:
            low, high = bootstrap.recentred(low, high, statistics, scores.set_values[name])
        low, high = bootstrap.within(low, high, cls.value_range, float(scores.set_values[name]))
    return {"value": scores.set_values[name], "ci_low": low, "ci_high": high, "n": n,
            "higher_is_better": cls.higher_is_better,
            "record": with_fingerprint(metric_record(name, scores.identities, options, n, len(resamples)))}


def summarise(scores: Scores, options: EvalOptions, identity: dict) -> tuple[list[dict], dict]:
    """Rows of ``per_pair.csv`` and the ``summary.json`` dict."""
    n = len(scores.pairs)
    indices = bootstrap.resample_indices(n, options.n_bootstrap, options.seed)
    metrics: dict[str, dict] = {}
    for name in options.metrics:
        cls = registry.metric(name)
        if not cls.per_pair:
            metrics[name] = _set_entry(name, cls, scores, options, indices)
            continue
        values = scores.per_pair[name]
        finite = values[np.isfinite(values)]
        # A rate gets Wilson's interval, a mean the percentile bootstrap, inside the metric's range.
        low, high = bootstrap.pair_interval(values, indices, cls.value_range, cls.rate)
        metrics[name] = {"value": float(finite.mean()) if finite.size else math.nan, "ci_low": low, "ci_high": high,
                         "n": int(finite.size), "higher_is_better": cls.higher_is_better,
                         "record": with_fingerprint(metric_record(name, scores.identities, options, int(finite.size),
                                                                  options.n_bootstrap))}
    summary = {
        "identity": identity,
        "metrics": {name: metrics[name] for name in registry.metrics() if name in metrics},
        "per_category": _per_category(scores),
        "per_category_n": _category_counts(scores),
        "face_found_rate": float(scores.face_found.mean()) if scores.face_found is not None else None,
        "resized_pairs": scores.resized_pairs,
    }
    return _rows(scores), _json_safe(summary)


def _per_category(scores: Scores) -> dict[str, dict[str, float]]:
    # Set-level metrics (FID, KID ...) are left out: a category holds too few images for them.
    by_category: dict[str, list[int]] = defaultdict(list)
    for index, pair in enumerate(scores.pairs):
        by_category[pair.category].append(index)
    table = {}
    for category in sorted(by_category):
        rows = np.array(by_category[category])
        entry = {}
        for name, values in scores.per_pair.items():
            picked = values[rows]
            picked = picked[np.isfinite(picked)]
            entry[name] = float(picked.mean()) if picked.size else math.nan
        table[category] = entry
    return table


def _category_counts(scores: Scores) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for pair in scores.pairs:
        counts[pair.category] += 1
    return dict(sorted(counts.items()))


def _rows(scores: Scores) -> list[dict]:
    rows = []
    columns = per_pair_columns(scores.per_pair)[len(PAIR_INFO):-len(PAIR_NOTES)]
    for index, pair in enumerate(scores.pairs):
        row = {"id": pair.id, "category": pair.category}
        for name in columns:
            value = scores.per_pair.get(name)
            row[name] = "" if value is None or not np.isfinite(value[index]) else repr(float(value[index]))
        row["face_found"] = "" if scores.face_found is None else str(bool(scores.face_found[index])).lower()
        row["reason"] = scores.reasons[index]
        rows.append(row)
    return rows


def _json_safe(value):
    # JSON has no NaN: a value that could not be computed is written as null.
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value

