"""One run's numbers as table cells, and the notes a table of runs carries.

Where numbers come from: per-pair metrics are averaged from ``per_pair.csv`` (the raw record,
so the tables, the per-category breakdown and the significance test all agree with one
another); set-level metrics (FID, KID, FD-CLIP) come from ``summary.json``, as does any metric
a run has no per-pair column for. A method that was not run has no row: a table never fills a gap.
"""

from __future__ import annotations

import math

import pandas as pd

from spf_bench.generation.protocol import WEIGHT_SOURCES
from spf_bench.results.columns import Metric, all_columns, columns_with_values, known, per_pair_columns
from spf_bench.results.runs import MethodRun
from spf_bench.results.stats import mean_ci
from spf_bench.results.table import Cell

UNTRAINED_WEIGHTS = tuple(name for name, record in WEIGHT_SOURCES.items() if not record.trained)


def summary_cell(entry) -> Cell:
    if isinstance(entry, dict):
        value = entry.get("value")
        return Cell(to_float(value), to_float(entry.get("ci_low")), to_float(entry.get("ci_high")), int(entry.get("n") or 0))
    return Cell(to_float(entry))


def to_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def frame_cells(frame: pd.DataFrame, metrics: tuple[Metric, ...] | None = None) -> dict[str, Cell]:
    """Mean and interval of every per-pair metric column present in ``frame``."""
    cells = {}
    for metric in metrics if metrics is not None else per_pair_columns():
        if metric.per_pair and metric.name in frame.columns:
            ci = mean_ci(pd.to_numeric(frame[metric.name], errors="coerce"), metric.name)
            cells[metric.name] = Cell(ci.value, ci.ci_low, ci.ci_high, ci.n)
    return cells


def run_cells(run: MethodRun) -> dict[str, Cell]:
    """A run's value per metric: per-pair means from ``per_pair.csv``, the rest from ``summary.json``.

    Where the summary records the same mean, its interval (the evaluator's seeded bootstrap) is
    kept so the report and ``summary.json`` agree; a stale or absent one gives way to the same
    kind of interval computed from the pairs (:func:`spf_bench.results.stats.mean_ci`).
    """
    summary_metrics = run.summary.get("metrics") or {}
    cells = {name: summary_cell(entry) for name, entry in summary_metrics.items() if known(name)}
    if run.per_pair is not None:
        for name, cell in frame_cells(run.per_pair).items():
            recorded = cells.get(name)
            if recorded is not None and _same_mean(recorded.value, cell.value) \
                    and math.isfinite(recorded.ci_low) and math.isfinite(recorded.ci_high):
                cell = Cell(cell.value, recorded.ci_low, recorded.ci_high, cell.n)
            cells[name] = cell
    return cells


def _same_mean(a: float, b: float) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def face_found_rate(run: MethodRun) -> float:
    if run.summary.get("face_found_rate") is not None:
        return to_float(run.summary["face_found_rate"])
    if run.per_pair is not None and "face_found" in run.per_pair.columns:
        found = run.per_pair["face_found"].astype(str).str.lower().isin(("true", "1", "1.0", "yes"))
        return float(found.mean()) if len(found) else math.nan
    return math.nan


def _scored(run: MethodRun, name: str) -> bool:
    return name in (run.summary.get("metrics") or {}) or (run.per_pair is not None and name in run.per_pair.columns)


def table_metrics(runs: dict[str, MethodRun]) -> tuple[Metric, ...]:
    """The paper's columns, then each other metric some run scored: no column no run could fill."""
    return columns_with_values(lambda name: any(_scored(r, name) for r in runs.values()))


def networks_notes(runs: dict[str, MethodRun]) -> list[str]:
    """Under ``synth``, which networks are the world's own and which the untrained tiny zoo lent.

    The borrowed networks are read off the score records (each names its backbone), so the
    note names exactly the metrics whose numbers only test the pipeline.
    """
    synth = [r for r in runs.values() if r.weights == "synth"]
    if not synth:
        return []
    from spf_bench.zoo import synth_source

    world = sorted(synth_source.world_networks())
    borrowed: dict[str, set[str]] = {}
    for run in synth:
        for metric, entry in (run.summary.get("metrics") or {}).items():
            backbone = ((entry if isinstance(entry, dict) else {}).get("record") or {}).get("backbone")
            if backbone and backbone not in world and backbone != "oracle":  # the oracle ships beside the zoo's
                borrowed.setdefault(backbone, set()).add(metric)
    own = f"{', '.join(world)} and the attribute oracle are" if world else "the attribute oracle is"
    line = f"Networks of the synth weights: {own} the synthetic world's own, trained and shipped with the package; "
    if borrowed:
        used = {m for names in borrowed.values() for m in names}
        metrics = [m.name for m in all_columns() if m.name in used]  # in the tables' order
        line += (f"the untrained tiny zoo lends {', '.join(sorted(borrowed))}, so the numbers of {', '.join(metrics)} "
                 "only test the pipeline here.")
    else:
        line += "every other network comes from the untrained tiny zoo."
    return [line]


def untrained_notes(runs: dict[str, MethodRun]) -> list[str]:
    kinds = sorted({r.weights for r in runs.values() if r.weights in UNTRAINED_WEIGHTS})
    if not kinds:
        return []
    return [f"These numbers come from untrained {' and '.join(kinds)} models (weights: {', '.join(kinds)}); "
            "they test the pipeline and mean nothing about the methods."]

