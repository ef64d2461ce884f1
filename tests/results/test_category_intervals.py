"""Intervals stay inside their metric's range: a rate's is Wilson's, a bounded mean's never
leaves its bounds, and a value that rounds to zero prints without a minus sign."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from spf_bench.core.intervals import wilson
from spf_bench.metrics import bootstrap, registry
from spf_bench.metrics.base import UNIT
from spf_bench.results.render import fixed
from spf_bench.results.runs import load_runs
from spf_bench.results.tables import leaderboard, per_category_table
from support.report_runs import write_run

Z = 1.959963984540054  # the 97.5% normal quantile


def wilson_by_formula(hits: int, n: int) -> tuple[float, float]:
    # Wilson (1927), written out independently of scipy: centre and half-width of the score interval.
    p = hits / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return centre - half, centre + half


def _frame(columns: dict[str, list[float]], category: str = "accessories") -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    frame = pd.DataFrame({"id": [f"t{i:02d}" for i in range(n)], "category": [category] * n})
    for name, values in columns.items():
        frame[name] = values
    frame["face_found"], frame["reason"] = True, ""
    return frame


def _cell(runs, category: str, metric: str):
    row = next(r for r in per_category_table(runs).rows if r.section == category)
    return row.cells[metric]


def test_wilson_agrees_with_the_formula_and_stays_in_unit_range():
    for hits, n in ((0, 12), (1, 12), (6, 12), (12, 12), (3, 100)):
        assert wilson(hits, n) == pytest.approx(wilson_by_formula(hits, n), abs=1e-12)
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_a_category_rate_of_one_in_twelve_gets_the_wilson_interval(tmp_path):
    hits = [1.0] + [0.0] * 11
    write_run(tmp_path, "ours", _frame({"Target-Acc": hits}), weights="synth")
    cell = _cell(load_runs(tmp_path), "accessories", "Target-Acc")
    assert cell.value == pytest.approx(1 / 12) and cell.n == 12
    low, high = wilson_by_formula(1, 12)
    assert (cell.ci_low, cell.ci_high) == pytest.approx((low, high), abs=1e-12)
    # The symmetric t-interval of these values was [-0.100, 0.267]; Wilson's low end is above 0.
    assert 0 < cell.ci_low < cell.value < cell.ci_high < 1


def test_a_rate_with_no_hit_keeps_a_width_and_the_run_mean_gets_it_too(tmp_path):
    write_run(tmp_path, "ours", _frame({"Target-Acc": [0.0] * 12}), weights="synth")
    runs = load_runs(tmp_path)
    cell = _cell(runs, "accessories", "Target-Acc")
    assert cell.ci_low == 0.0 and cell.ci_high == pytest.approx(wilson_by_formula(0, 12)[1])
    overall = leaderboard(runs).rows[0].cells["Target-Acc"]  # no summary interval: computed from the pairs
    assert (overall.ci_low, overall.ci_high) == (cell.ci_low, cell.ci_high)


def test_means_bounded_in_unit_range_never_get_an_end_outside_it(tmp_path):
    # Mostly 0 with one 0.3 (Attr-Pres), mostly 1 with one 0.4 (CLIP-I, a cosine): a symmetric
    # interval put the first's low end below 0 and the second's high end above 1.
    near_zero = [0.0] * 11 + [0.3]
    near_one = [1.0] * 11 + [0.4]
    write_run(tmp_path, "ours", _frame({"Attr-Pres": near_zero, "CLIP-I": near_one}), weights="synth")
    runs = load_runs(tmp_path)
    pres, clip = _cell(runs, "accessories", "Attr-Pres"), _cell(runs, "accessories", "CLIP-I")
    assert 0.0 <= pres.ci_low <= pres.value < pres.ci_high <= 1.0
    assert -1.0 <= clip.ci_low < clip.value <= clip.ci_high <= 1.0
    t_half = 2.200985160082949 * np.std(near_zero, ddof=1) / math.sqrt(12)
    assert np.mean(near_zero) - t_half < 0  # the old interval did leave the range here


def test_bounded_intervals_hold_on_many_random_samples():
    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(2, 15))
        # Values piled at the bounds, the hardest case, some a rounding error past them.
        values = np.clip(rng.beta(0.2, 0.2, n) + rng.normal(0, 1e-10, n), -1e-9, 1 + 1e-9)
        low, high = bootstrap.pair_interval(values, bootstrap.resample_indices(n, 200, trial), UNIT)
        mean = values.mean()
        assert 0.0 <= low <= high <= 1.0, (trial, low, high)
        assert low <= min(max(mean, 0.0), 1.0) <= high


def test_every_metric_declares_a_range_and_rates_are_unit_bounded():
    for name, cls in registry.metrics().items():
        floor, ceiling = cls.value_range
        assert floor < ceiling, name
        if cls.rate:
            assert (floor, ceiling) == UNIT, name
    assert registry.metric("Target-Acc").rate and registry.metric("Attr-Pres").value_range == UNIT
    assert registry.metric("KID").value_range[0] == -math.inf  # an unbiased estimate may fall below 0


def test_a_value_rounding_to_zero_prints_without_a_minus_sign(tmp_path):
    from spf_bench.results.report import ReportOptions, build_report

    out = write_run(tmp_path, "ours", _frame({"CLIP-T": [0.2 + 0.01 * i for i in range(12)]}))
    summary = json.loads((out / "summary.json").read_text())
    summary["metrics"]["KID"] = {"value": 0.00001, "ci_low": -0.00003, "ci_high": 0.00004, "n": 12,
                                 "higher_is_better": False}
    (out / "summary.json").write_text(json.dumps(summary))
    folder = build_report(tmp_path, ReportOptions(out=tmp_path / "report")).parent
    pages = [folder / "index.md", folder / "index.html", *sorted((folder / "tables").glob("*.md")),
             *sorted((folder / "tables").glob("*.tex"))]
    text = {p.name: p.read_text() for p in pages}
    # KID's interval is shown, as zeros (the Markdown front page shows values only, the tables' files intervals too).
    assert "[0.0000, 0.0000]" in text["leaderboard.md"] and "[0.0000, 0.0000]" in text["index.html"]
    for name, page in text.items():
        assert "-0.0000" not in page, name
    assert fixed(-0.00003, 4) == "0.0000" and fixed(-0.0, 3) == "0.000"
    assert fixed(-0.0002, 4) == "-0.0002" and fixed(0.00003, 4) == "0.0000"  # a real negative keeps its sign


def test_the_browser_prints_zero_without_a_sign():
    from spf_bench.serve.app import _number

    assert _number(-0.00003, "KID") == "0.0000" and _number(-0.0011, "KID") == "-0.0011"
