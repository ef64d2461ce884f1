"""``spf-bench report``: every table and picture of a results folder, in one folder.

Output layout (``OUT`` defaults to ``RUNS_DIR/report``)::

    OUT/index.md, OUT/index.html          the front pages, tables inline, pictures linked
    OUT/tables/<name>.{csv,md,tex,json}   tab1, tab4, tab5, leaderboard, reconstruction, per_category
    OUT/tables/significance.{csv,md}      the reference method against every other one
    OUT/figures/*.png                     comparison grids, reconstruction grid, bars, trade-off

A report built on untrained weights (``tiny`` or ``random``) says so in its first lines; one
on ``synth`` says which networks are the synthetic world's and which the tiny zoo lent.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from spf_bench.core.atomic import write_text_atomic
from spf_bench.core.errors import SpfError
from spf_bench.core.progress import progress_bar
from spf_bench.methods.registry import proposed_method
from spf_bench.results.figures import (
    comparison_grid,
    metric_bars,
    reconstruction_grid,
    save_png,
    tradeoff_scatter,
)
from spf_bench.results.pages import Block, Page, check_links, frame_markdown, page_html, page_markdown
from spf_bench.triples.captions import Triple
from spf_bench.triples.triple_set import TripleSet
from spf_bench.results.runs import (
    MethodRun,
    find_triple_set,
    load_paper_reference,
    load_runs,
    load_triple_set,
)
from spf_bench.metrics import registry
from spf_bench.results.tables import (
    TABLE_TITLES,
    MetricTable,
    column,
    tradeoff_axes,
    leaderboard,
    method_label,
    method_sort_key,
    networks_notes,
    paper_table,
    per_category_table,
    reconstruction_table,
    significance_against,
    untrained_notes,
)
from spf_bench.results.render import table_csv, table_json, table_latex, table_markdown

GRIDS_PER_CATEGORY = 1
MAX_GRIDS = 6
RECONSTRUCTION_ROWS = 4


@dataclass
class ReportOptions:
    out: Path | None = None
    with_paper: bool = False
    triples: Path | None = None
    sort_by: str | None = None
    grid_triples: list[str] = field(default_factory=list)
    reference_method: str | None = None
    bootstrap_draws: int = 2000
    # Sections a higher layer adds (the user study): called with the runs and the report
    # folder, returns blocks whose files it wrote there. A hook rather than an import, since
    # the study lives above the results layer.
    extra_blocks: Callable[[dict, Path], list] | None = None


def safe_name(text: str) -> str:
    """A file-name-safe form of user text; a short hash keeps two different ids apart."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._")[:40] or "x"
    return f"{slug}-{hashlib.sha256(str(text).encode()).hexdigest()[:8]}"


def _write_table(table: MetricTable, folder: Path, name: str) -> list[str]:
    written = {
        f"tables/{name}.csv": table_csv(table),
        f"tables/{name}.md": f"# {table.title}\n\n" + table_markdown(table, with_ci=True),
        f"tables/{name}.tex": table_latex(table),
        f"tables/{name}.json": table_json(table),
    }
    for relative, text in written.items():
        write_text_atomic(folder / relative, text)
    return list(written)


def _table_blocks(runs: dict[str, MethodRun], folder: Path, options: ReportOptions) -> list[Block]:
    reference = load_paper_reference() if options.with_paper else None
    blocks = []
    for key in TABLE_TITLES:
        table = paper_table(runs, key, reference)
        if table.rows:  # a table none of whose methods was run is left out, never filled
            blocks.append(Block(table.title, table=table, links=_write_table(table, folder, key)))
    board = leaderboard(runs, sort_by=options.sort_by)
    blocks.append(Block("Leaderboard", table=board, links=_write_table(board, folder, "leaderboard"),
                        text="Every method in the results folder with its run identity."
                             + (f" Sorted by {options.sort_by}, best first." if options.sort_by else "")))
    recon = reconstruction_table(runs)
    if recon.rows:
        blocks.append(Block(recon.title, table=recon, links=_write_table(recon, folder, "reconstruction")))
    categories = per_category_table(runs)
    if categories.rows:
        blocks.append(Block(categories.title, table=categories, links=_write_table(categories, folder, "per_category")))
    return blocks


def _significance_block(runs: dict[str, MethodRun], folder: Path, options: ReportOptions) -> Block | None:
    if len(runs) < 2:
        return None
    proposed = proposed_method()
    reference = options.reference_method or (proposed if proposed in runs else sorted(runs, key=method_sort_key)[0])
    if reference not in runs:
        raise SpfError(f"The reference method '{reference}' was not run; the runs are {', '.join(sorted(runs))}.")
    frame = significance_against(runs, reference, draws=options.bootstrap_draws)
    # A method the test could not compare is named with the reason, never silently left out.
    not_compared = " ".join(f"{method} is not compared: {why}" for method, why in frame.attrs.get("not_compared", {}).items())
    if frame.empty:
        if not not_compared:
            return None
        return Block("Significance", text=not_compared)
    shown = frame[["method_a", "metric", "direction", "n", "mean_a", "mean_b", "mean_diff", "ci_low", "ci_high",
                   "p_bootstrap", "p_wilcoxon", "verdict"]].rename(columns={"method_a": "other", "mean_a": "mean other",
                                                                             "mean_b": f"mean {reference}"})
    write_text_atomic(folder / "tables/significance.csv", frame.to_csv(index=False))
    write_text_atomic(folder / "tables/significance.md", frame_markdown(shown))
    text = (f"Paired tests of {reference} against each other method on the triples both scored: mean_diff is "
            f"{reference} minus the other, with a paired bootstrap 95% interval; a difference is called "
            "significant when the bootstrap and the Wilcoxon signed-rank test both give p < 0.05. "
            "Set-level metrics (FID, KID, FD-CLIP) are values of the whole set and are not tested per pair."
            + (" " + not_compared if not_compared else ""))
    return Block("Significance", frame=shown, text=text, links=["tables/significance.csv", "tables/significance.md"])


def _plot_blocks(runs: dict[str, MethodRun], folder: Path) -> list[Block]:
    board = leaderboard(runs)
    blocks = []
    if metric_bars(board, folder / "figures/metrics_bars.png"):
        blocks.append(Block("Metrics with 95% intervals", image="figures/metrics_bars.png"))
    x_choices, y_choices = tradeoff_axes()
    y = next((m for m in y_choices if all(m in r.cells and math.isfinite(r.cells[m].value) for r in board.rows)), None)
    for x in x_choices:
        if y and all(x in r.cells and math.isfinite(r.cells[x].value) for r in board.rows):
            if tradeoff_scatter(board, folder / "figures/tradeoff.png", x_metric=x, y_metric=y):
                blocks.append(Block("Preservation vs responsiveness", image="figures/tradeoff.png",
                                    text=f"One point per method: {column(x).header} against {column(y).header}."))
            break
    return blocks


def choose_grid_triples(runs: dict[str, MethodRun], triples: TripleSet, wanted: list[str]) -> list[Triple]:
    """The triples asked for, else the first triple of each category that every method produced."""
    by_id = triples.by_id()
    if wanted:
        unknown = [t for t in wanted if t not in by_id]
        if unknown:
            raise SpfError(f"Triple '{unknown[0]}' is not in the triple set at {triples.root}.")
        return [by_id[t] for t in wanted]
    chosen, per_category = [], {}
    for triple in triples.triples:
        tid, category = triple.id, triple.category
        if per_category.get(category, 0) >= GRIDS_PER_CATEGORY or triples.original_if_present(tid) is None:
            continue
        if all(run.image_path(tid) for run in runs.values()):
            chosen.append(triple)
            per_category[category] = per_category.get(category, 0) + 1
        if len(chosen) >= MAX_GRIDS:
            break
    return chosen


def _triple_title(triple: Triple) -> str:
    return f"{triple.id} ({triple.category}): {triple.base_caption} + {triple.target_caption}"


def _grid_blocks(runs: dict[str, MethodRun], triples: TripleSet | None, folder: Path, options: ReportOptions) -> list[Block]:
    if triples is None:
        return [Block("Comparison grids", text="No triple set was found (pass --triples DIR), so the grids that "
                                               "need the original portraits were not drawn.")]
    order = sorted(runs, key=method_sort_key)
    blocks = []
    for triple in choose_grid_triples(runs, triples, options.grid_triples):
        tid = triple.id
        grid = comparison_grid(_triple_title(triple), triples.original_if_present(tid),
                               [(method_label(m), runs[m].image_path(tid)) for m in order])
        relative = f"figures/compare_{safe_name(tid)}.png"
        save_png(grid.image, folder / relative)
        blocks.append(Block(f"Comparison: triple {tid}", image=relative))
    with_recon = [m for m in order if any((runs[m].folder / "reconstruction").glob("*.png"))]
    if with_recon:
        rows = []
        for triple in triples.triples:
            tid = triple.id
            original = triples.original_if_present(tid)
            if original is not None and all(runs[m].image_path(tid, "reconstruction") for m in with_recon):
                rows.append((f"{tid}: {triple.base_caption}", original,
                             [(method_label(m), runs[m].image_path(tid, "reconstruction")) for m in with_recon]))
            if len(rows) >= RECONSTRUCTION_ROWS:
                break
        if rows:
            save_png(reconstruction_grid(rows).image, folder / "figures/reconstruction.png")
            blocks.append(Block("Base-text reconstruction", image="figures/reconstruction.png",
                                text="Each method on the base caption alone, beside the original."))
    return blocks


def _facts(runs: dict[str, MethodRun], triples: TripleSet | None) -> list[str]:
    facts = [f"Methods: {', '.join(sorted(runs, key=method_sort_key))}."]
    weights = sorted({r.weights or '?' for r in runs.values()})
    facts.append(f"Weights: {', '.join(weights)}.")
    facts += networks_notes(runs)  # under synth: which networks are the world's, which the tiny zoo's
    if triples is not None:
        facts.append(f"Triple set: {triples.root} ({len(triples.triples)} triples).")
    return facts


def build_report(runs_dir: Path | str, options: ReportOptions | None = None) -> Path:
    """Write the report folder and return the path of its ``index.html``."""
    options = options or ReportOptions()
    root = Path(runs_dir)
    runs = load_runs(root)
    if not runs:
        raise SpfError(f"{root} holds no method run (no sub-folder with a summary.json).")
    if options.sort_by and options.sort_by not in registry.metrics():
        raise SpfError(f"Cannot sort by '{options.sort_by}': the metrics are {', '.join(registry.metrics())}.")
    folder = Path(options.out) if options.out else root / "report"
    folder.mkdir(parents=True, exist_ok=True)
    triples = load_triple_set(options.triples) if options.triples else find_triple_set(runs, root)

    with progress_bar(total=5, desc="report", unit="part") as bar:
        blocks = _table_blocks(runs, folder, options)
        bar.update()
        significance = _significance_block(runs, folder, options)
        blocks += [significance] if significance else []
        bar.update()
        blocks += _plot_blocks(runs, folder)
        bar.update()
        blocks += _grid_blocks(runs, triples, folder, options)
        blocks += options.extra_blocks(runs, folder) if options.extra_blocks else []
        bar.update()
        page = Page("SPF-Bench report", banner=untrained_notes(runs), facts=_facts(runs, triples), blocks=blocks)
        check_links(page, folder)
        write_text_atomic(folder / "index.md", page_markdown(page))
        write_text_atomic(folder / "index.html", page_html(page))
        bar.update()
    return folder / "index.html"
