"""``spf-bench run`` end to end on tiny: triple set, trained checkpoints, generation, all
eight metrics and the leaderboard; a second run renders and trains nothing."""

from __future__ import annotations

import csv
import json
import math
import warnings

import pytest

from spf_bench.benchmark import RunRequest, run_benchmark
from spf_bench.generation.sampling import GenerationSettings
from spf_bench.methods.training import QuickTraining
from spf_bench.metrics import SmallSetWarning

# tiny-network ops: one intra-op thread (see the single_thread fixture in conftest)
pytestmark = pytest.mark.usefixtures("single_thread")

METRICS = ("FID", "LPIPS", "ID", "CLIP-I", "Seg-Cons", "CLIP-T", "HPSv2", "MPS")
PER_PAIR = ("LPIPS", "ID", "CLIP-I", "Seg-Cons", "CLIP-T", "HPSv2", "MPS")


@pytest.mark.slow
def test_run_on_tiny_writes_leaderboard_with_all_eight_metrics(tmp_path, monkeypatch, tiny_networks):
    out = tmp_path / "runs"
    request = RunRequest(
        methods=["base", "ours"], out=out, weights="tiny", n_triples=3, reconstruction=True,
        settings=GenerationSettings("ddim", 2, 7.5, 64, 64), batch_size=3, progress=False,
        quick=QuickTraining(steps=1, n_images=2, image_steps=2), report=lambda *_: None,
        # the smallest SAM prompt grid and bootstrap keep every metric's code path whole
        eval_options={"sam_points_per_side": 2, "n_bootstrap": 50, "fid_bootstrap": 5},
        networks=tiny_networks,  # the session's loaded metric networks (loaded here when missing)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_benchmark(request)
    # FID on 3 pairs is scored four times (two methods, customized and reconstruction): said once
    assert sum(issubclass(w.category, SmallSetWarning) for w in caught) == 1

    with open(out / "leaderboard.csv", newline="") as handle:
        rows = {r["method"]: r for r in csv.DictReader(handle)}
    assert set(rows) == {"base", "ours"}
    for method, row in rows.items():
        assert all(m in row for m in METRICS)
        with open(out / method / "per_pair.csv", newline="") as handle:
            pairs = list(csv.DictReader(handle))
        assert len(pairs) == 3
        for metric in METRICS:
            value = float(row[metric])
            # a number, or NaN only where every pair says why
            assert math.isfinite(value) or all(p["reason"] for p in pairs), (method, metric)
        for pair in pairs:
            for metric in PER_PAIR:
                assert math.isfinite(float(pair[metric])) or pair["reason"], (method, metric, pair)
        summary = json.loads((out / method / "summary.json").read_text())
        assert summary["identity"]["method"] == method and summary["identity"]["fingerprint"]
        assert set(summary["reconstruction"]) == {"FID", "LPIPS", "ID", "CLIP-I", "Seg-Cons"}
    assert (out / "leaderboard.md").read_text().count("|") > 20
    # the base method's reconstruction is the original itself: linked, not regenerated
    base_rec = json.loads((out / "base" / "summary.json").read_text())["reconstruction"]
    assert base_rec["LPIPS"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert (out / "base" / "reconstruction" / "t00000.png").samefile(out / "triples" / "originals" / "t00000.png")

    # a second run reuses the trained checkpoints and the cached images
    import spf_bench.benchmark as bench_run
    import spf_bench.generation.sampling as generate

    def no_render(*args, **kwargs):
        raise AssertionError("rendered again")
        yield  # pragma: no cover

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(generate, "render", no_render)
    monkeypatch.setattr("spf_bench.methods.training._train", no_training)
    request.evaluate = False
    assert set(bench_run.run_benchmark(request)) == {"base", "ours"}
