"""The paper's tables (Tab. 1, 4, 5), the leaderboard and the extra tables, as data.

A :class:`MetricTable` holds measured rows (and, on request, the paper's reported rows as
labelled references) with each value's 95% interval and its rank mark. ``.values`` gives the
pandas frame laid out like the paper: columns grouped Preservation / Responsiveness / Overall,
each headed with its direction arrow. Rendering to Markdown, LaTeX, HTML, CSV and JSON lives in
:mod:`spf_bench.results.render`.

Where numbers come from: per-pair metrics are averaged from ``per_pair.csv`` (the raw record,
so the tables, the per-category breakdown and the significance test all agree with one
another); set-level metrics (FID) come from ``summary.json``, as does any metric a run has no
per-pair column for. A method that was not run has no row: a table never fills a gap.

Runs on the ``synth`` weights also carry the synthetic world's exact metrics (Target-Acc,
Attr-Pres, ID-Pres); a table shows their group only when one of its runs scored them, so a
table of other weights has no such columns at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from spf_bench.core.atomic import write_text_atomic
from spf_bench.core.errors import SpfError
from spf_bench.results.runs import MethodRun, load_runs
from spf_bench.results.render import table_csv, table_markdown
from spf_bench.results.stats import mean_ci, paired_difference

WORLD_GROUP = "Synthetic world (exact)"
GROUPS = ("Preservation", "Responsiveness", "Overall", WORLD_GROUP)
UNTRAINED_WEIGHTS = ("tiny", "random")
SIGNIFICANCE_LEVEL = 0.05


@dataclass(frozen=True)
class Metric:
    name: str
    group: str
    higher_is_better: bool
    decimals: int
    per_pair: bool = True  # False: a value of the whole set (FID), never averaged over pairs

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    @property
    def header(self) -> str:
        return f"{self.name} {self.arrow}"


METRICS = (
    Metric("FID", "Preservation", False, 2, per_pair=False),
    Metric("LPIPS", "Preservation", False, 3),
    Metric("ID", "Preservation", True, 3),
    Metric("CLIP-I", "Preservation", True, 3),
    Metric("Seg-Cons", "Preservation", True, 2),
    Metric("CLIP-T", "Responsiveness", True, 3),
    Metric("HPSv2", "Overall", True, 3),
    Metric("MPS", "Overall", True, 3),
)
# (choice) The world's metrics get a group of their own after the paper's three: they read
# ground truth rather than a proxy, and the paper's columns keep their places.
WORLD_METRICS = (
    Metric("Target-Acc", WORLD_GROUP, True, 3),
    Metric("Attr-Pres", WORLD_GROUP, True, 3),
    Metric("ID-Pres", WORLD_GROUP, True, 3),
)
ALL_METRICS = METRICS + WORLD_METRICS
METRIC_BY_NAME = {m.name: m for m in ALL_METRICS}
PRESERVATION = tuple(m for m in METRICS if m.group == "Preservation")
WORLD_PRESERVATION = ("Attr-Pres", "ID-Pres")  # what the reconstruction analysis scores of the world's
PER_PAIR_METRICS = tuple(m for m in ALL_METRICS if m.per_pair)

METHOD_LABELS = {
    "base": "Base model (no fine-tuning)",
    "naive": "Naive fine-tuning",
    "adalora": "AdaLoRA",
    "lora": "LoRA",
    "tokencompose": "TokenCompose",
    "magnet": "Magnet",
    "ours": "Ours",
    "ours-no-attn": "Ours (w/o L_attn)",
    "ours-no-unet": "Ours (w/o L_unet)",
    "ours-no-re": "Ours (w/o L_re)",
    "ours-no-sfcm": "Ours (w/o SFCM)",
    "ours-direct-clip": "Ours (L_clip instead of L_re)",
    "stage2-full": "Stage 2: full weights",
    "stage2-lora-xattn": "Stage 2: LoRA on cross-attention",
    "stage2-adapter-xattn": "Stage 2: adapter on cross-attention",
    "only-stage2": "Only stage 2",
}
METHOD_ORDER = tuple(METHOD_LABELS)


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def method_sort_key(method: str) -> tuple:
    """Known methods in the paper's order, then any others alphabetically."""
    return (METHOD_ORDER.index(method), "") if method in METHOD_ORDER else (len(METHOD_ORDER), method)


@dataclass(frozen=True)
class TableLayout:
    key: str
    title: str
    rows: tuple[tuple[str, str, str], ...]  # (method, label in this table, section)


LAYOUTS = {
    "tab1": TableLayout("tab1", "Table 1: comparison with baselines, and ablations of our method", (
        ("base", "Base model (no fine-tuning)", "Baselines"),
        ("naive", "Naive fine-tuning", "Baselines"),
        ("adalora", "AdaLoRA", "Baselines"),
        ("lora", "LoRA", "Baselines"),
        ("tokencompose", "TokenCompose", "Baselines"),
        ("magnet", "Magnet", "Baselines"),
        ("ours", "Ours", "Ours"),
        ("ours-no-attn", "Ours (w/o L_attn)", "Ablations"),
        ("ours-no-unet", "Ours (w/o L_unet)", "Ablations"),
        ("ours-no-re", "Ours (w/o L_re)", "Ablations"),
        ("ours-no-sfcm", "Ours (w/o SFCM)", "Ablations"),
        ("ours-direct-clip", "Ours (L_clip instead of L_re)", "Ablations"),
    )),
    "tab4": TableLayout("tab4", "Table 4: trainable part of stage 2", (
        ("stage2-full", "Full weights", "Stage 2"),
        ("stage2-lora-xattn", "LoRA on cross-attention", "Stage 2"),
        ("stage2-adapter-xattn", "Adapter on cross-attention", "Stage 2"),
        ("ours", "Cross-attention (ours)", "Stage 2"),
    )),
    "tab5": TableLayout("tab5", "Table 5: training stages", (
        ("naive", "Only stage 1 (naive fine-tuning)", "Stages"),
        ("only-stage2", "Only stage 2", "Stages"),
        ("ours", "Stage 1 & 2 (ours)", "Stages"),
    )),
}


@dataclass(frozen=True)
class Cell:
    value: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    n: int = 0


EMPTY = Cell(math.nan)


@dataclass
class TableRow:
    method: str
    label: str
    cells: dict[str, Cell]
    section: str = ""
    source: str = "measured"  # or "paper": a reported reference, never ranked
    identity: dict = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)


@dataclass
class MetricTable:
    """Rows x metrics with intervals and rank marks; ``reference`` rows are shown, never ranked."""

    key: str
    title: str
    metrics: tuple[Metric, ...]
    rows: list[TableRow]
    reference: list[TableRow] = field(default_factory=list)
    info_columns: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    rank_within_sections: bool = False
    marks: dict[tuple[int, str], str] = field(default_factory=dict, init=False)  # (row index, metric) -> best|second

    def __post_init__(self) -> None:
        self.rerank()

    def rerank(self) -> None:
        self.marks = {}
        if self.rank_within_sections:
            sections: dict[str, list[int]] = {}
            for i, row in enumerate(self.rows):
                sections.setdefault(row.section, []).append(i)
            groups = list(sections.values())
        else:
            groups = [list(range(len(self.rows)))]
        for indices in groups:
            for metric in self.metrics:
                self.marks.update(_rank_marks(self.rows, indices, metric))

    def mark(self, row_index: int, metric: str) -> str:
        return self.marks.get((row_index, metric), "")

    def _frame(self, rows: list[TableRow], attr: str) -> pd.DataFrame:
        columns = pd.MultiIndex.from_tuples([(m.group, m.header) for m in self.metrics], names=["group", "metric"])
        data = [[getattr(r.cells.get(m.name, EMPTY), attr) for m in self.metrics] for r in rows]
        index = pd.Index([r.label for r in rows], name="Method")
        return pd.DataFrame(data, index=index, columns=columns, dtype=float)

    @property
    def values(self) -> pd.DataFrame:
        return self._frame(self.rows, "value")

    @property
    def ci_low(self) -> pd.DataFrame:
        return self._frame(self.rows, "ci_low")

    @property
    def ci_high(self) -> pd.DataFrame:
        return self._frame(self.rows, "ci_high")

    @property
    def reference_values(self) -> pd.DataFrame:
        return self._frame(self.reference, "value")

    @property
    def mark_frame(self) -> pd.DataFrame:
        frame = self.values.astype(object)
        for i in range(len(self.rows)):
            for j, metric in enumerate(self.metrics):
                frame.iat[i, j] = self.mark(i, metric.name)
        return frame

    def sorted_by(self, metric: str) -> MetricTable:
        """A copy with rows best-first by ``metric`` (its direction respected), gaps last."""
        if metric not in {m.name for m in self.metrics}:
            known = ", ".join(m.name for m in self.metrics)
            raise SpfError(f"Cannot sort by '{metric}': the metrics are {known}.")
        sign = -1.0 if METRIC_BY_NAME[metric].higher_is_better else 1.0

        def key(row: TableRow) -> tuple:
            value = row.cells.get(metric, EMPTY).value
            return (not math.isfinite(value), sign * value if math.isfinite(value) else 0.0)

        return MetricTable(self.key, self.title, self.metrics, sorted(self.rows, key=key), list(self.reference),
                           self.info_columns, list(self.notes), self.rank_within_sections)


def _rank_marks(rows: list[TableRow], indices: list[int], metric: Metric) -> dict[tuple[int, str], str]:
    """Best and second-best among measured rows, compared as displayed (rounded), ties shared.

    Comparing rounded values keeps the marks consistent with what a reader sees; a sole row is
    not marked because "best of one" says nothing, and with two rows the second is also the
    worst, so only the best is marked.
    """
    shown = {}
    for i in indices:
        value = rows[i].cells.get(metric.name, EMPTY).value
        if math.isfinite(value):
            shown[i] = round(value, metric.decimals)
    distinct = sorted(set(shown.values()), reverse=metric.higher_is_better)
    if len(shown) < 2:
        return {}
    marks = {}
    for i, value in shown.items():
        if value == distinct[0]:
            marks[(i, metric.name)] = "best"
        elif len(shown) > 2 and len(distinct) > 1 and value == distinct[1]:
            marks[(i, metric.name)] = "second"
    return marks


# ---------------------------------------------------------------- aggregating one run

def _summary_cell(entry) -> Cell:
    if isinstance(entry, dict):
        value = entry.get("value")
        return Cell(_float(value), _float(entry.get("ci_low")), _float(entry.get("ci_high")), int(entry.get("n") or 0))
    return Cell(_float(entry))


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def frame_cells(frame: pd.DataFrame, metrics=ALL_METRICS) -> dict[str, Cell]:
    """Mean and interval of every per-pair metric column present in ``frame``."""
    cells = {}
    for metric in metrics:
        if metric.per_pair and metric.name in frame.columns:
            ci = mean_ci(pd.to_numeric(frame[metric.name], errors="coerce"))
            cells[metric.name] = Cell(ci.value, ci.ci_low, ci.ci_high, ci.n)
    return cells


def run_cells(run: MethodRun) -> dict[str, Cell]:
    """A run's value per metric: per-pair means from ``per_pair.csv``, the rest from ``summary.json``.

    Where the summary records the same mean, its interval (the evaluator's seeded bootstrap) is
    kept so the report and ``summary.json`` agree; a stale or absent one gives way to a t-interval.
    """
    summary_metrics = run.summary.get("metrics") or {}
    cells = {name: _summary_cell(entry) for name, entry in summary_metrics.items() if name in METRIC_BY_NAME}
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
        return _float(run.summary["face_found_rate"])
    if run.per_pair is not None and "face_found" in run.per_pair.columns:
        found = run.per_pair["face_found"].astype(str).str.lower().isin(("true", "1", "1.0", "yes"))
        return float(found.mean()) if len(found) else math.nan
    return math.nan


def _scored(run: MethodRun, name: str) -> bool:
    return name in (run.summary.get("metrics") or {}) or (run.per_pair is not None and name in run.per_pair.columns)


def table_metrics(runs: dict[str, MethodRun], base: tuple[Metric, ...] = METRICS) -> tuple[Metric, ...]:
    """``base``, then each world metric some run scored: no table has a column no run could fill."""
    return base + tuple(m for m in WORLD_METRICS if any(_scored(r, m.name) for r in runs.values()))


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
        metrics = [m.name for m in ALL_METRICS if m.name in used]  # in the tables' order
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


# ---------------------------------------------------------------- the tables

def paper_rows(table_key: str, reference: pd.DataFrame | None) -> list[TableRow]:
    if reference is None:
        return []
    rows = []
    for record in reference[reference["table"] == table_key].sort_values("row").to_dict("records"):
        cells = {m.name: Cell(_float(record.get(m.name))) for m in METRICS}
        rows.append(TableRow(str(record["method"]), f"Paper (reported): {record['paper_label']}", cells,
                             section="Paper", source="paper"))
    return rows


def paper_table(runs: dict[str, MethodRun], key: str, reference: pd.DataFrame | None = None) -> MetricTable:
    """Tab. 1, 4 or 5: the layout's rows whose method was run; paper rows when given."""
    if key not in LAYOUTS:
        raise SpfError(f"Unknown table '{key}': the tables are {', '.join(LAYOUTS)}.")
    layout = LAYOUTS[key]
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
            cells = {name: _summary_cell(entry) for name, entry in recon.items() if name in METRIC_BY_NAME}
            rows.append(TableRow(method, method_label(method), cells))
    world = tuple(METRIC_BY_NAME[n] for n in WORLD_PRESERVATION if any(n in r.cells for r in rows))
    return MetricTable("reconstruction", "Base-text reconstruction (base caption alone vs the original)",
                       PRESERVATION + world, rows, notes=untrained_notes(runs))


def per_category_table(runs: dict[str, MethodRun]) -> MetricTable:
    """Each attribute category's means per method; marks compare methods within a category."""
    rows = []
    for method in sorted(runs, key=method_sort_key):
        run = runs[method]
        by_category: dict[str, dict[str, Cell]] = {}
        stored = run.summary.get("per_category") or {}
        for category, values in stored.items():
            by_category[str(category)] = {n: _summary_cell(v) for n, v in (values or {}).items() if n in METRIC_BY_NAME}
        if run.per_pair is not None:
            for category, frame in run.per_pair.groupby("category", sort=True):
                by_category.setdefault(str(category), {}).update(frame_cells(frame))
        for category, cells in by_category.items():
            rows.append(TableRow(method, method_label(method), cells, section=category, info={"Category": category}))
    rows.sort(key=lambda r: (r.section, method_sort_key(r.method)))
    # A set-level metric (FID) usually has no per-category value; an all-empty column is dropped.
    metrics = tuple(m for m in ALL_METRICS if any(math.isfinite(r.cells.get(m.name, EMPTY).value) for r in rows))
    return MetricTable("per_category", "Per-category breakdown", metrics, rows, info_columns=("Category",),
                       notes=untrained_notes(runs), rank_within_sections=True)


# ---------------------------------------------------------------- significance

def compare_methods(a: MethodRun, b: MethodRun, metrics=PER_PAIR_METRICS, draws: int = 2000, seed: int = 0,
                    alpha: float = SIGNIFICANCE_LEVEL) -> pd.DataFrame:
    """Paired test per metric of ``b`` against ``a`` on the triples both scored.

    ``mean_diff`` is mean(b - a). A difference counts as significant only when the paired
    bootstrap and the Wilcoxon test both put it below ``alpha``: two tests with different
    assumptions agreeing is a cheap guard against a lucky resample or a skewed distribution.
    FID is a value of the whole set and has no pairs, so it is not tested here.
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
    for metric in metrics:
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


def significance_against(runs: dict[str, MethodRun], reference: str, draws: int = 2000) -> pd.DataFrame:
    """``reference`` against every other run method that shares its triples (the report's view)."""
    frames = []
    for method in sorted(runs, key=method_sort_key):
        if method == reference:
            continue
        try:
            frames.append(compare_methods(runs[method], runs[reference], draws=draws))
        except SpfError:
            continue  # a method without pairs or on other triples is simply not compared
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ---------------------------------------------------------------- the leaderboard files

def write_leaderboard(runs_dir: Path | str, sort_by: str | None = None) -> MetricTable:
    """Write ``RUNS_DIR/leaderboard.csv`` and ``leaderboard.md`` from every method run there."""
    root = Path(runs_dir)
    table = leaderboard(load_runs(root), sort_by=sort_by)
    write_text_atomic(root / "leaderboard.csv", table_csv(table))
    write_text_atomic(root / "leaderboard.md", f"# {table.title}\n\n" + table_markdown(table))
    return table
