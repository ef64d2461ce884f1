"""The precision a score was computed in is in its record and its backbone's identity: HPS on a
GPU runs under float16 autocast as hpsv2 does, everything else in float32."""

from __future__ import annotations

import pytest

from spf_bench.evaluation import records
from spf_bench.evaluation.options import EvalOptions
from spf_bench.evaluation.precision import scoring_dtype
from spf_bench.metrics.backbones import make_backbone

NETWORKS = ("inception", "lpips", "face", "clip", "sam", "hps", "mps")


def test_only_hps_on_cuda_scores_in_half_precision():
    assert scoring_dtype("hps", "cuda") == "float16 autocast"
    assert {scoring_dtype(n, "cpu") for n in NETWORKS} == {"float32"}
    assert {scoring_dtype(n, "cuda") for n in NETWORKS if n != "hps"} == {"float32"}


def test_hps_scores_of_a_gpu_never_share_a_cache_key_with_the_cpus():
    cpu, gpu = make_backbone("hps", "tiny", "cpu"), make_backbone("hps", "tiny", "cuda")
    assert "autocast" not in cpu.identity()["preprocessing"]  # the CPU's cache keys are unchanged
    assert gpu.identity()["preprocessing"]["autocast"] == "float16"
    assert cpu.key() != gpu.key()
    # a network computing in float32 on both keeps one key
    assert make_backbone("clip", "tiny", "cpu").key() == make_backbone("clip", "tiny", "cuda").key()


@pytest.mark.parametrize("metric, backbone, dtype", [("HPSv2", "hps", "float16 autocast"), ("CLIP-T", "clip", "float32")])
def test_the_record_says_the_precision_on_a_gpu(monkeypatch, metric, backbone, dtype):
    monkeypatch.setattr(records, "_device_description", lambda device: "cuda:test")  # no GPU needed
    identity = make_backbone(backbone, "tiny", "cuda").identity()
    record = records.metric_record(metric, {backbone: identity}, EvalOptions(device="cuda", weights="tiny"), 2, 10)
    assert record["dtype"] == dtype
    on_cpu = records.metric_record(metric, {backbone: make_backbone(backbone, "tiny", "cpu").identity()},
                                   EvalOptions(device="cpu", weights="tiny"), 2, 10)
    assert on_cpu["dtype"] == "float32"
