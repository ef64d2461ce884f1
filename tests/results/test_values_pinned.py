"""Values, not types: FID's bootstrap interval around its point value, and the report's bar
chart and scatter drawn from the numbers the runs hold (read back from the drawn figure)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from spf_bench.metrics import bootstrap
from spf_bench.metrics.fid import frechet_distance
from spf_bench.results import figures, tables
from spf_bench.results.runs import load_runs
from support.report_runs import MEANS, write_standard_runs


def _features(n: int, d: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(n, d)) * 1.1 + 0.3


@pytest.mark.parametrize("d", [16, 64])
def test_fid_interval_contains_the_point_value_and_shrinks_with_more_images(d):
    widths = []
    for n in (40, 160, 640):
        fo, fc = _features(n, d)
        point = float(frechet_distance(torch.tensor(fo), torch.tensor(fc), warn=False))
        low, high = bootstrap.fid_interval(fo, fc, bootstrap.resample_indices(n, 60, 0))
        assert 0.0 <= low < point < high, (n, low, point, high)
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] > 2 * widths[2]  # about 1/sqrt(n): 16 times the images, a quarter of the width


def test_fid_interval_of_identical_sets_starts_at_zero():
    fo, _ = _features(50)
    low, high = bootstrap.fid_interval(fo, fo.copy(), bootstrap.resample_indices(50, 30, 0))
    assert low == 0.0 and high == pytest.approx(0.0, abs=1e-6)


# ----------------------------------------------------------------------------- figures

@pytest.fixture()
def drawn(monkeypatch):
    """Figures handed to the saver, kept open for reading instead of closed."""
    kept = []

    def keep(fig, path):
        kept.append(fig)
        path.write_bytes(b"")
        return path

    monkeypatch.setattr(figures, "_save_figure", keep)
    yield kept
    import matplotlib.pyplot as plt

    for fig in kept:
        plt.close(fig)


def _means_from_files(root) -> dict[str, dict[str, float]]:
    """Each method's metric means computed here from its per_pair.csv (NaN left out) and its FID."""
    import json

    out = {}
    for method in MEANS:
        frame = pd.read_csv(root / method / "per_pair.csv")
        values = {name: float(np.nanmean(frame[name])) for name in ("LPIPS", "ID", "CLIP-I", "Seg-Cons", "CLIP-T", "HPSv2", "MPS")}
        values["FID"] = json.loads((root / method / "summary.json").read_text())["metrics"]["FID"]["value"]
        out[method] = values
    return out


def test_bar_heights_are_the_runs_means(tmp_path, drawn):
    root = write_standard_runs(tmp_path / "runs", reconstruction=False)
    board = tables.leaderboard(load_runs(root))
    figures.metric_bars(board, tmp_path / "bars.png")
    (fig,) = drawn
    expected = _means_from_files(root)
    lower_better = {"FID", "LPIPS"}
    panels = [ax for ax in fig.axes if ax.patches]
    assert len(panels) == 8
    for ax in panels:
        metric = next(m for m in expected["ours"] if ax.get_title().startswith(m + " ") or ax.get_title().startswith(m + "("))
        labels = [t.get_text() for t in ax.get_yticklabels()]
        widths = [bar.get_width() for bar in ax.patches]
        assert sorted(labels) == sorted(MEANS)
        for label, width in zip(labels, widths):
            assert width == pytest.approx(expected[label][metric], rel=1e-9), (metric, label)
        # the highlighted bar is the best one by the metric's direction
        pick = min if metric in lower_better else max
        best = pick(MEANS, key=lambda m: expected[m][metric])
        red = [label for label, bar in zip(labels, ax.patches) if bar.get_facecolor()[:3] == pytest.approx((0.839, 0.153, 0.157), abs=2e-3)]
        assert red == [best], metric
    # ID of naive is the mean of the nine pairs with a face, not of ten
    assert expected["naive"]["ID"] != pytest.approx(MEANS["naive"][2], abs=1e-12) or math.isnan(expected["naive"]["ID"])


def test_scatter_points_are_the_runs_means(tmp_path, drawn):
    root = write_standard_runs(tmp_path / "runs", reconstruction=False)
    board = tables.leaderboard(load_runs(root))
    figures.tradeoff_scatter(board, tmp_path / "scatter.png", x_metric="CLIP-I")
    (fig,) = drawn
    (ax,) = fig.axes
    expected = _means_from_files(root)
    points = {text.get_text(): text.xy for text in ax.texts}
    assert set(points) == set(MEANS)
    for method, (x, y) in points.items():
        assert x == pytest.approx(expected[method]["CLIP-I"], rel=1e-9)
        assert y == pytest.approx(expected[method]["CLIP-T"], rel=1e-9)
    markers = np.array(sorted(tuple(line.get_xydata()[0]) for line in ax.lines if line.get_marker() == "o"))
    want = np.array(sorted((expected[m]["CLIP-I"], expected[m]["CLIP-T"]) for m in MEANS))
    np.testing.assert_allclose(markers, want, rtol=1e-9)
