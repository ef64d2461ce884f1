"""Grids have the expected size, tile count and tile contents; plots are written as PNG."""

from __future__ import annotations

import pytest
from PIL import Image

from spf_bench.results import figures
from spf_bench.results import tables
from spf_bench.results.runs import load_runs
from support.report_runs import COLORS, solid_png, write_standard_runs

# Geometry spelled out by hand (margin 8, gap 8, tile 160, two 16-px lines of caption or title
# plus 4 px each), so that a change of layout is a deliberate change of these numbers.
TITLE_BAND = CAPTION_BAND = 2 * 16 + 4


def _center(grid, index):
    left, top, right, bottom = grid.boxes[index]
    return grid.image.getpixel(((left + right) // 2, (top + bottom) // 2))


def _has_text(image, box) -> bool:
    crop = image.crop(box).convert("L")
    return crop.getextrema()[0] < 100  # some dark glyph pixels on the white band


@pytest.fixture()
def images(tmp_path):
    paths = {}
    for name, color in COLORS.items():
        paths[name] = tmp_path / f"{name}.png"
        solid_png(paths[name], color)
    return paths


def test_comparison_grid_has_one_tile_per_method_plus_the_original(images):
    methods = [("Naive fine-tuning", images["naive"]), ("LoRA", images["lora"]), ("Ours", images["ours"])]
    grid = figures.comparison_grid("t00 (clothing): a photo of a man + wearing a red scarf", images["original"], methods)
    assert len(grid.boxes) == 4
    assert grid.image.size == (8 + 4 * 160 + 3 * 8 + 8, 8 + TITLE_BAND + 160 + CAPTION_BAND + 8)
    assert [_center(grid, i) for i in range(4)] == [COLORS["original"], COLORS["naive"], COLORS["lora"], COLORS["ours"]]
    for left, top, right, bottom in grid.boxes:  # a caption under every tile
        assert _has_text(grid.image, (left, bottom, right, bottom + CAPTION_BAND))
    assert _has_text(grid.image, (8, 8, grid.image.width - 8, 8 + TITLE_BAND))


def test_comparison_grid_wraps_rows_and_marks_missing_images(images):
    methods = [(name, images[name]) for name in ("naive", "lora", "ours", "ours-no-sfcm", "stage2-full", "only-stage2")]
    methods.append(("Magnet", None))  # this method produced no image for the triple
    grid = figures.comparison_grid("title", images["original"], methods, columns=6)
    assert len(grid.boxes) == 8
    assert grid.image.size == (8 + 6 * 160 + 5 * 8 + 8,
                               8 + TITLE_BAND + 160 + CAPTION_BAND + 8 + 160 + CAPTION_BAND + 8)
    assert grid.boxes[6][0] == 8 and grid.boxes[6][1] > grid.boxes[5][3]  # the 7th tile starts a new row
    assert _center(grid, 7) == figures.MISSING


def test_reconstruction_grid_has_a_row_per_triple(images):
    rows = [(f"t0{i}: a photo of a woman", images["original"], [("Naive", images["naive"]), ("Ours", images["ours"])])
            for i in range(2)]
    grid = figures.reconstruction_grid(rows)
    assert len(grid.boxes) == 6
    assert grid.image.size == (8 + 3 * 160 + 2 * 8 + 8, 8 + 2 * (TITLE_BAND + 160 + CAPTION_BAND) + 8 + 8)
    assert _center(grid, 4) == COLORS["naive"] and _center(grid, 5) == COLORS["ours"]


def test_tiles_keep_their_aspect_ratio(tmp_path):
    wide = tmp_path / "wide.png"
    Image.new("RGB", (40, 20), (0, 0, 255)).save(wide)
    grid = figures.compose_grid([figures.GridRow([(wide, "wide")])])
    left, top, right, bottom = grid.boxes[0]
    assert grid.image.getpixel((left + 80, top + 80)) == (0, 0, 255)
    assert grid.image.getpixel((left + 80, top + 5)) == figures.BACKGROUND  # letterboxed, not stretched


def test_long_captions_are_wrapped_within_the_tile():
    font = figures._font()
    lines = figures.wrap_text("a " * 200 + "supercalifragilisticexpialidocious" * 3, font, 160, 2)
    assert len(lines) == 2 and lines[-1].endswith("…")
    assert all(font.getlength(line) <= 160 for line in lines)


def test_bar_chart_and_scatter_are_written(tmp_path):
    runs = load_runs(write_standard_runs(tmp_path / "runs", reconstruction=False))
    board = tables.leaderboard(runs)
    bars = figures.metric_bars(board, tmp_path / "bars.png")
    scatter = figures.tradeoff_scatter(board, tmp_path / "scatter.png", x_metric="CLIP-I", y_metric="CLIP-T")
    for path in (bars, scatter):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 300 and image.height > 200
    empty = tables.leaderboard({})
    assert figures.metric_bars(empty, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
