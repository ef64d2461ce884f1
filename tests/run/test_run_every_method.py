"""Every registered method through ``spf-bench run`` on tiny (one shared run, checkpoints
trained through ``checkpoint_for``), and values that can be derived without the code under
test: the base model scored on its own originals."""

from __future__ import annotations

import csv
import json
import math

import pytest

from spf_bench.benchmark import RunRequest, run_benchmark
from spf_bench.generation.sampling import GenerationSettings
from spf_bench.methods.registry import known_methods
from spf_bench.methods.training import QuickTraining

pytestmark = [pytest.mark.usefixtures("single_thread"), pytest.mark.slow]

METRICS = ("FID", "LPIPS", "ID", "CLIP-I", "Seg-Cons", "CLIP-T", "HPSv2", "MPS")
PER_PAIR = METRICS[1:]
N_TRIPLES = 2
# Registered by the package itself; a method added later must be added here on purpose.
EXPECTED = {"base", "naive", "lora", "adalora", "ours", "ours-no-attn", "ours-no-unet", "ours-no-re", "ours-no-sfcm",
            "ours-direct-clip", "stage2-full", "stage2-lora-xattn", "stage2-adapter-xattn", "only-stage2",
            "tokencompose", "magnet", "ours-mask-oracle", "ours-mask-inverted", "ours-mask-ones",
            "ours-exclusion-sum", "ours-mask-area"}
# Trained on ground-truth target masks, which only the synthetic world's training sets carry.
SYNTH_ONLY = {"ours-mask-oracle"}
RUN_ON_TINY = EXPECTED - SYNTH_ONLY


def _request(out, methods, networks, **extra) -> RunRequest:
    return RunRequest(
        methods=methods, out=out, weights="tiny", n_triples=N_TRIPLES, settings=GenerationSettings("ddim", 2, 7.5, 64, 64),
        batch_size=N_TRIPLES, progress=False, quick=QuickTraining(steps=1, n_images=2, image_steps=2),
        report=lambda *_: None, eval_options={"sam_points_per_side": 2, "n_bootstrap": 50, "fid_bootstrap": 5},
        networks=networks, **extra)


@pytest.fixture(scope="module")
def every_method_run(tmp_path_factory, tiny_networks):
    out = tmp_path_factory.mktemp("every-method") / "runs"
    run_benchmark(_request(out, sorted(set(known_methods()) - SYNTH_ONLY), tiny_networks))
    with open(out / "leaderboard.csv", newline="") as handle:
        return out, {row["method"]: row for row in csv.DictReader(handle)}


def test_every_registered_method_is_run():
    assert set(known_methods()) == EXPECTED


def test_synth_only_method_on_tiny_is_refused_in_one_sentence(every_method_run, tiny_networks):
    from spf_bench.core.errors import SpfError

    out, _ = every_method_run
    with pytest.raises(SpfError, match="target mask") as caught:
        run_benchmark(_request(out, ["ours-mask-oracle"], tiny_networks, triples=out / "triples"))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("method", sorted(RUN_ON_TINY))
def test_method_row_has_every_metric_or_a_named_reason(every_method_run, method):
    out, rows = every_method_run
    row = rows[method]
    with open(out / method / "per_pair.csv", newline="") as handle:
        pairs = list(csv.DictReader(handle))
    assert len(pairs) == N_TRIPLES
    for pair in pairs:
        for metric in PER_PAIR:
            value = float(pair[metric])
            # NaN only with a reason that names the metric (e.g. "ID: no face found ...")
            assert math.isfinite(value) or pair["reason"].startswith(f"{metric}:"), (metric, pair)
    for metric in METRICS:
        value = float(row[metric])
        if metric == "FID":
            assert math.isfinite(value) and value >= 0
        else:
            named = [p for p in pairs if p["reason"].startswith(f"{metric}:")]
            assert math.isfinite(value) or len(named) == len(pairs), (metric, row)
            if math.isfinite(value):  # the leaderboard's value is the mean over the pairs that have one
                finite = [float(p[metric]) for p in pairs if math.isfinite(float(p[metric]))]
                assert value == pytest.approx(sum(finite) / len(finite), rel=1e-6, abs=1e-9)
    summary = json.loads((out / method / "summary.json").read_text())
    assert summary["identity"]["method"] == method
    if known_methods()[method].checkpoint is not None:  # a trained checkpoint, from the cache
        checkpoint = summary["identity"]["checkpoint"]
        assert checkpoint and f"/trained/{method}-" in checkpoint and summary["identity"]["checkpoint_sha256"]


def test_trained_methods_differ_from_base(every_method_run):
    """A checkpoint that never reached the pipeline would draw the base model's images."""
    out, _ = every_method_run
    base = {p.name: p.read_bytes() for p in (out / "base" / "images").glob("*.png")}
    for method in sorted(RUN_ON_TINY - {"base"}):
        images = {p.name: p.read_bytes() for p in (out / method / "images").glob("*.png")}
        assert images.keys() == base.keys()
        assert images != base, method


def test_base_on_its_own_originals_scores_perfect_preservation(every_method_run, tiny_networks):
    """The base model's reconstruction is the original itself, so LPIPS 0, ID 1, CLIP-I 1 and
    Seg-Cons 100 hold by definition (ID where a face is found in it)."""
    out, _ = every_method_run
    run_benchmark(_request(out, ["base"], tiny_networks, reconstruction=True, triples=out / "triples"))
    rec = json.loads((out / "base" / "summary.json").read_text())["reconstruction"]
    assert rec["LPIPS"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert rec["CLIP-I"]["value"] == pytest.approx(1.0, abs=1e-5)
    assert rec["Seg-Cons"]["value"] == pytest.approx(100.0, abs=1e-6)
    assert rec["ID"]["value"] == pytest.approx(1.0, abs=1e-5) or math.isnan(rec["ID"]["value"])
    assert rec["FID"]["value"] == pytest.approx(0.0, abs=1e-3)
    # the customized images are not the originals: the same metrics move away from the ideal
    custom = json.loads((out / "base" / "summary.json").read_text())["metrics"]
    assert custom["LPIPS"]["value"] > 1e-4 and custom["CLIP-I"]["value"] < 1.0
