"""The paper's tables (Tab. 1, 4, 5), the leaderboard and the extra tables, as data.

A :class:`~spf_bench.results.table.MetricTable` holds measured rows (and, on request, the
paper's reported rows as labelled references) with each value's 95% interval and its rank
mark. ``.values`` gives the pandas frame laid out like the paper: columns grouped Preservation
/ Responsiveness / Overall, each headed with its direction arrow. Rendering to Markdown, LaTeX,
HTML, CSV and JSON lives in :mod:`spf_bench.results.render`; the columns come from the metric
classes (:mod:`.columns`), a run's cells and the tables' notes from :mod:`.cells`, paired
tests from :mod:`.significance`.

Runs on the ``synth`` weights also carry the synthetic world's exact metrics (Target-Acc,
Attr-Pres, ID-Pres); a table shows their group only when one of its runs scored them, so a
table of other weights has no such columns at all. The same holds for any metric outside the
paper's eight (KID, FD-CLIP, a plug-in's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from spf_bench.core.atomic import write_text_atomic
from spf_bench.core.errors import SpfError
from spf_bench.results.cells import (  # noqa: F401  (re-exported: the tables' public names)
    UNTRAINED_WEIGHTS,
    face_found_rate,
    to_float,
    frame_cells,
    networks_notes,
    run_cells,
    summary_cell,
    table_metrics,
    untrained_notes,
)
from spf_bench.results.columns import (  # noqa: F401
    GROUPS,
    WORLD_GROUP,
    Metric,
    all_columns,
    column,
    columns_with_values,
    known,
    paper_columns,
    per_pair_columns,
    tradeoff_axes,
)
from spf_bench.methods import registry
from spf_bench.results.render import table_csv, table_markdown
from spf_bench.results.runs import MethodRun, load_runs
from spf_bench.results.significance import SIGNIFICANCE_LEVEL, compare_methods  # noqa: F401
from spf_bench.results.table import EMPTY, Cell, MetricTable, TableRow  # noqa: F401


def __getattr__(name: str):
    # Read from the metric registry on use, so that a plug-in registered later counts.
    if name == "METRIC_BY_NAME":
        return {m.name: m for m in all_columns()}
    if name == "PER_PAIR_METRICS":
        return per_pair_columns()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# The paper's tables; which methods stand in them, under which labels, comes from each
# method's registry record (spf_bench.methods.registry.PaperRow).
TABLE_TITLES = {
    "tab1": "Table 1: comparison with baselines, and ablations of our method",
    "tab4": "Table 4: trainable part of stage 2",
    "tab5": "Table 5: training stages",
}


def method_label(method: str) -> str:
    return registry.method_label(method)


def method_order() -> tuple[str, ...]:
    """Registered methods in the paper's tables' row order, then the others (plug-ins too)."""
    return registry.method_order(tuple(TABLE_TITLES))


def method_sort_key(method: str) -> tuple:
    """Known methods in the paper's order, then any others alphabetically."""
    order = method_order()
    return (order.index(method), "") if method in order else (len(order), method)


@dataclass(frozen=True)
class TableLayout:
    key: str
    title: str
    rows: tuple[tuple[str, str, str], ...]  # (method, label in this table, section)


def table_layout(key: str) -> TableLayout:
    rows = tuple((spec.name, row.label, row.section) for spec, row in registry.paper_rows(key))
    return TableLayout(key, TABLE_TITLES[key], rows)


# ---------------------------------------------------------------- the tables

def paper_rows(table_key: str, reference: pd.DataFrame | None) -> list[TableRow]:
    if reference is None:
        return []
    rows = []
    for record in reference[reference["table"] == table_key].sort_values("row").to_dict("records"):
        cells = {m.name: Cell(to_float(record.get(m.name))) for m in paper_columns()}
        rows.append(TableRow(str(record["method"]), f"Paper (reported): {record['paper_label']}", cells,
                             section="Paper", source="paper"))
    return rows


def paper_table(runs: dict[str, MethodRun], key: str, reference: pd.DataFrame | None = None) -> MetricTable:
    """Tab. 1, 4 or 5: the layout's rows whose method was run; paper rows when given."""
    if key not in TABLE_TITLES:
        raise SpfError(f"Unknown table '{key}': the tables are {', '.join(TABLE_TITLES)}.")
    layout = table_layout(key)
    rows = [TableRow(method, label, run_cells(runs[method]), section, identity=dict(runs[method].identity))
            for method, label, section in layout.rows if method in runs]
    shown = {method: runs[method] for method, _, _ in layout.rows if method in runs}
    return MetricTable(key, layout.title, table_metrics(shown), rows, paper_rows(key, reference), notes=untrained_notes(runs))


IDENTITY_FIELDS = ("method", "checkpoint_sha256", "triples_sha256", "weights", "date")
LEADERBOARD_INFO = ("Checkpoint", "Triples", "Weights", "Date", "Faces found")


def _short(value, length: int = 12) -> str:
    return str(value)[:length] if value not in (None, "") else "-"


def leaderboard(runs: dict[str, MethodRun], sort_by: str | None = None) -> MetricTable:
    """Every run method, one row each with its identity; best-first by ``sort_by`` if given."""
    rows = []
    for method in sorted(runs, key=method_sort_key):
        run = runs[method]
        identity = {name: run.identity.get(name, "") for name in IDENTITY_FIELDS}
        identity["method"] = method
        identity["face_found_rate"] = face_found_rate(run)
        info = {
            "Checkpoint": _short(identity["checkpoint_sha256"]),
            "Triples": _short(identity["triples_sha256"]),
            "Weights": str(identity["weights"] or "-"),
            "Date": _short(identity["date"], 10),
            # ID leaves out pairs without a face; the share kept is shown beside it (METHOD.md).
            "Faces found": f"{identity['face_found_rate']:.0%}" if math.isfinite(identity["face_found_rate"]) else "-",
        }
        rows.append(TableRow(method, method, run_cells(run), identity=identity, info=info))
    notes = untrained_notes(runs) + networks_notes(runs)
    triple_sets = {r.identity.get("triples_sha256") for r in runs.values() if r.identity.get("triples_sha256")}
    if len(triple_sets) > 1:
        notes.append("The methods were run on different triple sets; their numbers are not directly comparable.")
    table = MetricTable("leaderboard", "Leaderboard", table_metrics(runs), rows, info_columns=LEADERBOARD_INFO, notes=notes)
    return table.sorted_by(sort_by) if sort_by else table


def reconstruction_table(runs: dict[str, MethodRun]) -> MetricTable:
    """Sec. 4.4: preservation metrics of each method on the base caption alone vs the original."""
    rows = []
    for method in sorted(runs, key=method_sort_key):
        recon = runs[method].summary.get("reconstruction")
        if isinstance(recon, dict) and recon:
            cells = {name: summary_cell(entry) for name, entry in recon.items() if known(name)}
            rows.append(TableRow(method, method_label(method), cells))
    metrics = tuple(m for m in columns_with_values(lambda name: any(name in r.cells for r in rows)) if m.preservation)
    return MetricTable("reconstruction", "Base-text reconstruction (base caption alone vs the original)",
                       metrics, rows, notes=untrained_notes(runs))


def per_category_table(runs: dict[str, MethodRun]) -> MetricTable:
    """Each attribute category's means per method; marks compare methods within a category."""
    rows = []
    for method in sorted(runs, key=method_sort_key):
        run = runs[method]
        by_category: dict[str, dict[str, Cell]] = {}
        stored = run.summary.get("per_category") or {}
        for category, values in stored.items():
            by_category[str(category)] = {n: summary_cell(v) for n, v in (values or {}).items() if known(n)}
        if run.per_pair is not None:
            for category, frame in run.per_pair.groupby("category", sort=True):
                by_category.setdefault(str(category), {}).update(frame_cells(frame))
        for category, cells in by_category.items():
            rows.append(TableRow(method, method_label(method), cells, section=category, info={"Category": category}))
    rows.sort(key=lambda r: (r.section, method_sort_key(r.method)))
    # A set-level metric (FID) usually has no per-category value; an all-empty column is dropped.
    metrics = tuple(m for m in all_columns() if any(math.isfinite(r.cells.get(m.name, EMPTY).value) for r in rows))
    return MetricTable("per_category", "Per-category breakdown", metrics, rows, info_columns=("Category",),
                       notes=untrained_notes(runs), rank_within_sections=True)


def significance_against(runs: dict[str, MethodRun], reference: str, draws: int = 2000) -> pd.DataFrame:
    """``reference`` against every other run method that shares its triples (the report's view).

    A method that cannot be compared (no pairs, other triples) is no silent gap: the frame's
    ``attrs["not_compared"]`` maps it to the sentence saying why, which the report prints.
    """
    frames, skipped = [], {}
    for method in sorted(runs, key=method_sort_key):
        if method == reference:
            continue
        try:
            frames.append(compare_methods(runs[method], runs[reference], draws=draws))
        except SpfError as error:
            skipped[method] = str(error)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    frame.attrs["not_compared"] = skipped
    return frame


# ---------------------------------------------------------------- the leaderboard files

def write_leaderboard(runs_dir: Path | str, sort_by: str | None = None) -> MetricTable:
    """Write ``RUNS_DIR/leaderboard.csv`` and ``leaderboard.md`` from every method run there."""
    root = Path(runs_dir)
    table = leaderboard(load_runs(root), sort_by=sort_by)
    write_text_atomic(root / "leaderboard.csv", table_csv(table))
    write_text_atomic(root / "leaderboard.md", f"# {table.title}\n\n" + table_markdown(table))
    return table
