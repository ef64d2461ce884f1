"""Pictures for the report: image grids (PIL) and metric plots (matplotlib).

Grids are composed with PIL rather than matplotlib so that each tile keeps its exact pixels
(no resampling by a plotting backend) and the geometry is known in advance: tests check the
size and where each tile lies. Plots use matplotlib's file-only backend; nothing opens a window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # render to files only; a report is built on machines without a display
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image, ImageDraw, ImageFont, ImageOps  # noqa: E402

TILE = 160
MARGIN = 8
GAP = 8
FONT_SIZE = 13
LINE_HEIGHT = 16
CAPTION_LINES = 2
TITLE_LINES = 2
BACKGROUND = (255, 255, 255)
MISSING = (200, 200, 200)


def _font(size: int = FONT_SIZE) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError, ImportError):  # Pillow without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def wrap_text(text: str, font, width: int, max_lines: int) -> list[str]:
    """Greedy word wrap to ``width`` pixels; an overflowing last line ends with an ellipsis."""
    lines: list[str] = []
    current = ""
    for word in str(text).split():
        trial = f"{current} {word}".strip()
        if font.getlength(trial) <= width or not current:
            current = trial
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and font.getlength(last + "…") > width:
            last = last[:-1]
        lines[-1] = last + "…"
    return [_fit(line, font, width) for line in lines]


def _fit(line: str, font, width: int) -> str:
    """Cut a single unbreakable word that is wider than the tile."""
    if font.getlength(line) <= width:
        return line
    while line and font.getlength(line + "…") > width:
        line = line[:-1]
    return line + "…"


@dataclass
class GridRow:
    """One row of tiles: each tile an image (a path, an image, or None for 'missing') and a caption."""

    tiles: list[tuple[Path | Image.Image | None, str]]
    title: str = ""


@dataclass
class Grid:
    image: Image.Image
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # (left, top, right, bottom) per tile


def grid_geometry(rows: list[GridRow], tile: int = TILE) -> tuple[tuple[int, int], list[tuple[int, int, int, int]]]:
    """The canvas size and each tile's box, computed before anything is drawn."""
    columns = max((len(r.tiles) for r in rows), default=0)
    width = 2 * MARGIN + columns * tile + max(columns - 1, 0) * GAP
    boxes = []
    y = MARGIN
    for index, row in enumerate(rows):
        if index:
            y += GAP
        if row.title:
            y += TITLE_LINES * LINE_HEIGHT + 4
        for col in range(len(row.tiles)):
            x = MARGIN + col * (tile + GAP)
            boxes.append((x, y, x + tile, y + tile))
        y += tile + CAPTION_LINES * LINE_HEIGHT + 4
    return (width, y + MARGIN), boxes


def _load_tile(source, tile: int) -> Image.Image | None:
    if source is None:
        return None
    image = source if isinstance(source, Image.Image) else Image.open(source)
    image = image.convert("RGB")
    # Scale to fit the square (up or down), keeping the aspect ratio: a portrait is never stretched.
    return ImageOps.contain(image, (tile, tile), Image.Resampling.LANCZOS)


def compose_grid(rows: list[GridRow], tile: int = TILE) -> Grid:
    size, boxes = grid_geometry(rows, tile)
    canvas = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = _font()
    flat = [(row, t) for row in rows for t in row.tiles]
    drawn_titles: set[int] = set()
    for (row, (source, caption)), (left, top, right, bottom) in zip(flat, boxes):
        if row.title and id(row) not in drawn_titles:
            drawn_titles.add(id(row))
            title_top = top - TITLE_LINES * LINE_HEIGHT - 4
            for i, line in enumerate(wrap_text(row.title, font, size[0] - 2 * MARGIN, TITLE_LINES)):
                draw.text((MARGIN, title_top + i * LINE_HEIGHT), line, fill=(0, 0, 0), font=font)
        image = _load_tile(source, tile)
        if image is None:
            draw.rectangle((left, top, right - 1, bottom - 1), fill=MISSING)
            draw.text((left + 6, top + tile // 2 - 8), "missing", fill=(90, 90, 90), font=font)
        else:
            canvas.paste(image, (left + (tile - image.width) // 2, top + (tile - image.height) // 2))
        for i, line in enumerate(wrap_text(caption, font, tile, CAPTION_LINES)):
            draw.text((left, bottom + 2 + i * LINE_HEIGHT), line, fill=(20, 20, 20), font=font)
    return Grid(canvas, boxes)


def comparison_grid(title: str, original, methods: list[tuple[str, Path | None]], columns: int = 6,
                    tile: int = TILE) -> Grid:
    """Fig. 6 for one triple: the original, then each method's customization, captions under each."""
    tiles = [(original, "Original"), *((path, label) for label, path in methods)]
    chunks = [tiles[i:i + columns] for i in range(0, len(tiles), columns)]
    return compose_grid([GridRow(chunk, title if i == 0 else "") for i, chunk in enumerate(chunks)], tile)


def reconstruction_grid(rows: list[tuple[str, object, list[tuple[str, Path | None]]]], tile: int = TILE) -> Grid:
    """Fig. 9: per triple, the original then each method on the base caption alone."""
    return compose_grid([GridRow([(original, "Original"), *((p, label) for label, p in recon)], title)
                         for title, original, recon in rows], tile)


def save_png(image: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG")
    tmp.replace(path)
    return path


# ---------------------------------------------------------------- plots

def plain_text(text: str) -> str:
    """Keep matplotlib from reading a '$' in a method name as the start of a formula."""
    return str(text).replace("$", r"\$")


def _finite(value: float) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def metric_bars(table, path: Path) -> Path | None:
    """One horizontal bar chart per metric, 95% intervals as error bars, best bar highlighted."""
    panels = [m for m in table.metrics if any(_finite(r.cells[m.name].value) for r in table.rows if m.name in r.cells)]
    if not panels:
        return None
    columns = min(4, len(panels))
    nrows = math.ceil(len(panels) / columns)
    height = max(2.0, 0.32 * len(table.rows) + 1.2)
    fig, axes = plt.subplots(nrows, columns, figsize=(4.2 * columns, height * nrows), squeeze=False)
    labels = [plain_text(r.label) for r in table.rows]
    for ax, metric in zip(axes.flat, panels):
        values, low, high, colors = [], [], [], []
        for index, row in enumerate(table.rows):
            cell = row.cells.get(metric.name)
            value = cell.value if cell else math.nan
            values.append(value if _finite(value) else 0.0)
            has_ci = cell is not None and _finite(cell.ci_low) and _finite(cell.ci_high)
            low.append(value - cell.ci_low if has_ci else 0.0)
            high.append(cell.ci_high - value if has_ci else 0.0)
            colors.append("#d62728" if table.mark(index, metric.name) == "best" else "#1f77b4")
        positions = range(len(labels))
        ax.barh(positions, values, xerr=[low, high], color=colors, capsize=3, ecolor="#333333")
        ax.set_yticks(list(positions), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{metric.header} ({'higher' if metric.higher_is_better else 'lower'} is better)", fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    return _save_figure(fig, path)


def tradeoff_scatter(table, path: Path, x_metric: str, y_metric: str | None = None) -> Path | None:
    """Preservation (x) against responsiveness (y, default: the metrics' preferred responsiveness
    axis), one point per method; better is up and right."""
    from spf_bench.results.columns import tradeoff_axes

    y_metric = y_metric or tradeoff_axes()[1][0]
    by_name = {m.name: m for m in table.metrics}
    xm, ym = by_name[x_metric], by_name[y_metric]
    points = [(r, r.cells.get(x_metric), r.cells.get(y_metric)) for r in table.rows]
    points = [(r, cx, cy) for r, cx, cy in points if cx and cy and _finite(cx.value) and _finite(cy.value)]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for row, cx, cy in points:
        xerr = [[cx.value - cx.ci_low], [cx.ci_high - cx.value]] if _finite(cx.ci_low) and _finite(cx.ci_high) else None
        yerr = [[cy.value - cy.ci_low], [cy.ci_high - cy.value]] if _finite(cy.ci_low) and _finite(cy.ci_high) else None
        ax.errorbar(cx.value, cy.value, xerr=xerr, yerr=yerr, fmt="o", capsize=3, alpha=0.85)
        ax.annotate(plain_text(row.label), (cx.value, cy.value), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if not xm.higher_is_better:
        ax.invert_xaxis()  # keep "better" to the right whatever the metric's direction
    if not ym.higher_is_better:
        ax.invert_yaxis()
    ax.set_xlabel(f"Preservation: {xm.header}  (better →)")
    ax.set_ylabel(f"Responsiveness: {ym.header}  (better ↑)")
    ax.set_title("Preservation vs responsiveness (95% intervals)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save_figure(fig, path)


def _save_figure(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
    tmp.replace(path)
    return path
