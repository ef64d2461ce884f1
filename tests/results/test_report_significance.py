"""The paired test tells a method from itself (no difference) and from a clearly shifted copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spf_bench.core.errors import SpfError
from spf_bench.results.runs import MethodRun
from spf_bench.results.tables import compare_methods
from spf_bench.results.stats import mean_ci, paired_difference

N = 60


def _run(method: str, frame: pd.DataFrame, triples_sha: str = "s" * 64) -> MethodRun:
    return MethodRun(method, Path(method), {"method": method, "triples_sha256": triples_sha}, {}, frame)


def _noisy_frame(seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"id": [f"p{i}" for i in range(N)], "category": "clothing"})
    frame["LPIPS"] = rng.normal(0.4, 0.08, N)
    frame["CLIP-T"] = rng.normal(0.25, 0.03, N)
    return frame


def test_a_method_against_itself_shows_no_difference():
    run = _run("ours", _noisy_frame())
    result = compare_methods(run, run).set_index("metric")
    assert set(result.index) == {"LPIPS", "CLIP-T"}  # only the metrics both runs have
    assert (result["mean_diff"] == 0).all()
    assert (result["p_bootstrap"] == 1.0).all() and (result["p_wilcoxon"] == 1.0).all()
    assert not result["significant"].any()
    assert (result["verdict"] == "no significant difference").all()


def test_a_clearly_shifted_copy_is_a_significant_difference_in_the_right_direction():
    base = _noisy_frame()
    shifted = base.copy()
    noise = np.random.default_rng(7).normal(0, 0.01, N)
    shifted["CLIP-T"] = base["CLIP-T"] + 0.03 + noise  # better: higher CLIP-T
    shifted["LPIPS"] = base["LPIPS"] + 0.05 + noise  # worse: higher LPIPS
    result = compare_methods(_run("lora", base), _run("ours", shifted)).set_index("metric")
    assert result["significant"].all()
    assert (result["p_bootstrap"] < 0.01).all() and (result["p_wilcoxon"] < 0.01).all()
    assert result.loc["CLIP-T", "mean_diff"] == pytest.approx(0.03 + noise.mean())
    assert result.loc["CLIP-T", "ci_low"] > 0
    assert result.loc["CLIP-T", "verdict"] == "ours better"
    assert result.loc["LPIPS", "verdict"] == "lora better"  # lower LPIPS is better


def test_a_small_noisy_difference_is_not_called_significant():
    base = _noisy_frame()
    other = base.copy()
    other["CLIP-T"] = base["CLIP-T"] + np.random.default_rng(3).normal(0, 0.03, N)  # noise, no shift
    result = compare_methods(_run("a", base), _run("b", other)).set_index("metric")
    assert not bool(result.loc["CLIP-T", "significant"])


def test_pairs_are_matched_by_id_and_nan_pairs_left_out():
    base = _noisy_frame()
    shuffled = base.sample(frac=1.0, random_state=0).reset_index(drop=True)  # same scores, other order
    shuffled.loc[0, "LPIPS"] = np.nan
    result = compare_methods(_run("a", base), _run("b", shuffled)).set_index("metric")
    assert result.loc["CLIP-T", "mean_diff"] == 0 and result.loc["CLIP-T", "n"] == N
    assert result.loc["LPIPS", "n"] == N - 1


def test_different_triple_sets_are_refused():
    with pytest.raises(SpfError, match="different triple sets"):
        compare_methods(_run("a", _noisy_frame(), "x" * 64), _run("b", _noisy_frame(), "y" * 64))


def test_stat_helpers_on_edge_cases():
    assert mean_ci([]).n == 0 and np.isnan(mean_ci([]).value)
    single = mean_ci([0.5, np.nan])
    assert single.value == 0.5 and single.n == 1 and np.isnan(single.ci_low)
    empty = paired_difference(np.array([]), np.array([]))
    assert empty["n"] == 0 and np.isnan(empty["p_bootstrap"])


def test_a_method_that_cannot_be_compared_is_named_with_the_reason(tmp_path):
    from spf_bench.results.report import ReportOptions, build_report
    from spf_bench.results.tables import significance_against
    from support.report_runs import write_standard_runs

    runs = {"ours": _run("ours", _noisy_frame()), "naive": _run("naive", _noisy_frame(2)),
            "lora": _run("lora", _noisy_frame(3), triples_sha="t" * 64)}
    frame = significance_against(runs, "ours", draws=100)
    assert set(frame["method_a"]) == {"naive"}
    assert "different triple sets" in frame.attrs["not_compared"]["lora"]

    root = write_standard_runs(tmp_path / "runs", methods=("naive", "ours"), reconstruction=False)
    (root / "naive" / "per_pair.csv").unlink()
    build_report(root, ReportOptions(bootstrap_draws=50))
    page = (root / "report" / "index.md").read_text().replace("\\_", "_")  # Markdown escapes the underscore
    assert "naive is not compared: 'naive' has no per_pair.csv, which the paired test needs." in page
