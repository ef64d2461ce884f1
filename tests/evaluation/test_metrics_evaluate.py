"""The evaluator end to end: files in the documented format, records, cache reuse, bootstrap, errors, CLI."""

from __future__ import annotations

import csv
import json
import shutil
import warnings

import numpy as np
import pytest
import torch

from spf_bench.core.errors import SpfError
from spf_bench.evaluation.evaluator import (
    PER_PAIR_COLUMNS,
    EvalOptions,
    Pair,
    Scores,
    evaluate_run,
    summarise,
)
from spf_bench.evaluation.features_cache import FeatureCache
from spf_bench.metrics import METRIC_ORDER, SmallSetWarning
from spf_bench.metrics.backbones import BACKBONES
from support.metric_images import make_method_run, make_triple_set, portrait

# one intra-op thread (see the single_thread fixture in conftest)
pytestmark = pytest.mark.usefixtures("single_thread")

FAST = ("FID", "LPIPS", "ID", "CLIP-I", "CLIP-T")
RECORD_KEYS = {"implementation", "version", "weights", "weights_sha256", "preprocessing", "batch_size", "n", "seeds",
               "device", "libraries", "backbone"}


@pytest.fixture(scope="module")
def triple_set(tmp_path_factory):
    return make_triple_set(tmp_path_factory.mktemp("set") / "triples", n=4, size=64)


@pytest.fixture
def encoded(monkeypatch):
    """Counts images each backbone encodes."""
    counts: dict[str, int] = {}
    for name, cls in BACKBONES.items():
        original = cls.encode

        def spy(self, images, _original=original, _name=name):
            counts[_name] = counts.get(_name, 0) + len(images)
            return _original(self, images)

        monkeypatch.setattr(cls, "encode", spy)
    return counts


def _quiet(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSetWarning)
        return evaluate_run(progress=False, **kwargs)


def test_all_eight_metrics_in_documented_format(triple_set, tmp_path, tiny_networks):
    run = make_method_run(tmp_path / "out", triple_set, method="alpha")
    result = _quiet(triples_dir=triple_set, images_dir=run, weights="tiny", batch_size=3, sam_points_per_side=2,
                    n_bootstrap=200, fid_bootstrap=20, cache=FeatureCache(tmp_path / "cache"), networks=tiny_networks)
    with open(run / "per_pair.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames) == PER_PAIR_COLUMNS
    assert PER_PAIR_COLUMNS == ("id", "category", "LPIPS", "ID", "CLIP-I", "Seg-Cons", "CLIP-T", "HPSv2", "MPS",
                                "face_found", "reason")
    assert [r["id"] for r in rows] == ["t00000", "t00001", "t00002", "t00003"]
    assert all(r[m] != "" for r in rows for m in ("LPIPS", "ID", "CLIP-I", "Seg-Cons", "CLIP-T", "HPSv2", "MPS"))

    summary = json.loads((run / "summary.json").read_text())
    assert summary == json.loads(json.dumps(result.summary))
    assert list(summary["metrics"]) == list(METRIC_ORDER)
    assert {"method", "checkpoint_sha256", "triples_sha256", "weights", "date"} <= set(summary["identity"])
    assert summary["identity"]["method"] == "alpha" and summary["identity"]["weights"] == "tiny"
    for name, entry in summary["metrics"].items():
        assert {"value", "ci_low", "ci_high", "n", "higher_is_better", "record"} <= set(entry), name
        assert entry["ci_low"] <= entry["value"] <= entry["ci_high"], name
        assert RECORD_KEYS <= set(entry["record"]), name
        assert entry["record"]["batch_size"] == 3 and entry["record"]["device"].startswith("cpu")
    assert summary["metrics"]["FID"]["higher_is_better"] is False and summary["metrics"]["ID"]["higher_is_better"] is True
    assert summary["metrics"]["Seg-Cons"]["record"]["options"]["points_per_side"] == 2
    assert summary["metrics"]["CLIP-T"]["record"]["options"]["caption"] == "target"
    assert summary["metrics"]["LPIPS"]["record"]["preprocessing"]["range"] == "[-1, 1]"
    assert set(summary["per_category"]) == {"accessory", "expression", "hair"}
    assert summary["per_category_n"] == {"accessory": 2, "expression": 1, "hair": 1}
    assert summary["face_found_rate"] == 1.0
    per_pair_mean = np.mean([float(r["CLIP-I"]) for r in rows])
    assert abs(per_pair_mean - summary["metrics"]["CLIP-I"]["value"]) < 1e-12


def test_inception_features_are_those_torchmetrics_fid_accumulates(triple_set, tmp_path, tiny_networks):
    """Our Inception path (decode, uint8 NCHW, zoo network) feeds FID exactly what torchmetrics' FID sums."""
    from torchmetrics.image.fid import FrechetInceptionDistance as TorchmetricsFID

    from spf_bench.core.images import read_image
    from spf_bench.metrics.backbones import make_backbone

    net = tiny_networks.get("inception")  # zoo.load("inception", source="tiny"), shared by the session
    paths = sorted((triple_set / "originals").glob("*.png"))
    images = [read_image(p)[0] for p in paths]
    ours = np.stack([f["pool"] for f in make_backbone("inception", "tiny", network=net).encode(images)]).astype(np.float64)
    reference = TorchmetricsFID(feature=net)
    reference.update(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), real=True)
    assert np.allclose(reference.real_features_sum.numpy(), ours.sum(0), rtol=1e-6, atol=1e-6)
    assert np.allclose(reference.real_features_cov_sum.numpy(), ours.T @ ours, rtol=1e-6, atol=1e-6)


def test_second_method_reuses_cached_originals(triple_set, tmp_path, encoded, tiny_networks):
    cache = FeatureCache(tmp_path / "cache")
    first = make_method_run(tmp_path / "out", triple_set, method="first", shift=1)
    second = make_method_run(tmp_path / "out", triple_set, method="second", shift=3)
    a = _quiet(triples_dir=triple_set, images_dir=first, metrics=("FID", "CLIP-I", "CLIP-T", "LPIPS"), n_bootstrap=50,
               fid_bootstrap=5, cache=cache, networks=tiny_networks)
    # Each image once per backbone: CLIP-I and CLIP-T share the CLIP image features.
    assert encoded == {"inception": 8, "clip": 8, "lpips": 8}
    encoded.clear()
    b = _quiet(triples_dir=triple_set, images_dir=second, metrics=("FID", "CLIP-I", "CLIP-T", "LPIPS"), n_bootstrap=50,
               fid_bootstrap=5, cache=cache, networks=tiny_networks)
    # Originals come from the cache; LPIPS activations are recomputed by design (not cacheable).
    assert encoded == {"inception": 4, "clip": 4, "lpips": 8}
    for name in ("FID", "CLIP-I", "LPIPS"):  # same settings: comparable records
        assert b.summary["metrics"][name]["record"]["fingerprint"] == a.summary["metrics"][name]["record"]["fingerprint"]
    encoded.clear()
    again = _quiet(triples_dir=triple_set, images_dir=second, metrics=("FID", "CLIP-I", "CLIP-T", "LPIPS"), n_bootstrap=50,
                   fid_bootstrap=5, cache=cache, networks=tiny_networks)
    assert encoded == {"lpips": 8}
    for name in ("FID", "CLIP-I", "LPIPS"):
        assert again.summary["metrics"][name]["value"] == pytest.approx(b.summary["metrics"][name]["value"], rel=1e-9)


def _synthetic_scores(n=30):
    rng = np.random.default_rng(0)
    pairs = [Pair(f"t{i:05d}", "abc"[i % 3], "b", "t", None, None) for i in range(n)]
    ids = rng.normal(0.5, 0.1, n)
    ids[:3] = np.nan
    identities = {"clip": {"backbone": "clip", "implementation": "x", "weights_source": "tiny", "weights_sha256": "0",
                           "preprocessing": {}},
                  "face": {"backbone": "face", "implementation": "x", "weights_source": "tiny", "weights_sha256": "0",
                           "preprocessing": {}}}
    return Scores(pairs=pairs, per_pair={"CLIP-I": rng.normal(0.8, 0.05, n), "ID": ids}, reasons=[""] * n,
                  face_found=np.isfinite(ids), identities=identities)


def test_bootstrap_is_seeded_paired_and_per_category():
    scores = _synthetic_scores()
    opts = EvalOptions(metrics=("ID", "CLIP-I"), n_bootstrap=300)
    _, one = summarise(scores, opts, {})
    _, same = summarise(scores, opts, {})
    _, other = summarise(scores, EvalOptions(metrics=("ID", "CLIP-I"), n_bootstrap=300, seed=1), {})
    assert one["metrics"] == same["metrics"]
    assert one["metrics"]["CLIP-I"]["ci_low"] != other["metrics"]["CLIP-I"]["ci_low"]
    entry = one["metrics"]["ID"]
    assert entry["n"] == 27 and entry["ci_low"] < entry["value"] < entry["ci_high"]
    assert abs(entry["value"] - np.nanmean(scores.per_pair["ID"])) < 1e-12
    assert abs(one["face_found_rate"] - 0.9) < 1e-12
    expected_a = np.nanmean(scores.per_pair["ID"][0::3])
    assert abs(one["per_category"]["a"]["ID"] - expected_a) < 1e-12


def test_mismatched_sets_name_missing_and_extra_ids(triple_set, tmp_path):
    run = make_method_run(tmp_path / "out", triple_set, method="m")
    (run / "images" / "t00002.png").unlink()
    (run / "images" / "t00003.png").unlink()
    with pytest.raises(SpfError, match="lacks the customized image.*t00002, t00003"):
        evaluate_run(triple_set, run, metrics=("CLIP-I",), progress=False)
    portrait(9).save(run / "images" / "t00002.png")
    portrait(9).save(run / "images" / "t00003.png")
    portrait(9).save(run / "images" / "x99.png")
    with pytest.raises(SpfError, match="x99.*not in the triple set"):
        evaluate_run(triple_set, run, metrics=("CLIP-I",), progress=False)


def test_empty_set_is_refused(tmp_path):
    (tmp_path / "empty" / "originals").mkdir(parents=True)
    (tmp_path / "empty" / "manifest.json").write_text(json.dumps({"set": {}, "triples": []}))
    (tmp_path / "imgs").mkdir()
    with pytest.raises(SpfError, match="no triples; an empty set cannot be scored"):
        evaluate_run(tmp_path / "empty", tmp_path / "imgs", progress=False)


def test_corrupt_customized_image_names_file_and_triple(triple_set, tmp_path):
    run = make_method_run(tmp_path / "out", triple_set, method="m")
    path = run / "images" / "t00001.png"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(SpfError, match=r"t00001\.png \(triple t00001\) is corrupt or truncated"):
        evaluate_run(triple_set, run, metrics=("CLIP-I",), progress=False, cache=FeatureCache(tmp_path / "c"))
    assert not (run / "summary.json").exists()


def test_cli_scores_plain_folder_and_reports_errors(triple_set, tmp_path, capsys):
    from spf_bench.cli import main

    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert ", ".join(METRIC_ORDER) in " ".join(capsys.readouterr().out.split())  # the CLI lists the metrics' order

    run = make_method_run(tmp_path / "elsewhere", triple_set, method="theirs")
    folder = run / "images"
    portrait(0, size=80).save(folder / "t00000.png")  # another size: resized by the documented policy
    out = tmp_path / "scores"
    code = main(["evaluate", "--triples", str(triple_set), "--images", str(folder), "--out", str(out),
                 "--metrics", "CLIP-I,CLIP-T", "--bootstrap", "100", "--clip-t-caption", "full"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resized_pairs"] == 1 and summary["metrics"]["CLIP-T"]["record"]["options"]["caption"] == "full"
    from spf_bench.evaluation.evaluator import record_fingerprint

    record = dict(summary["metrics"]["CLIP-T"]["record"])
    fingerprint = record.pop("fingerprint")
    assert record_fingerprint(record) == fingerprint
    assert record_fingerprint({**record, "options": {**record["options"], "caption": "target"}}) != fingerprint
    assert record_fingerprint({**record, "n": 999}) == fingerprint
    assert "CLIP-I" in capsys.readouterr().out
    (folder / "t00003.png").unlink()
    assert main(["evaluate", "--triples", str(triple_set), "--images", str(folder), "--metrics", "CLIP-I"]) == 2
    assert "t00003" in capsys.readouterr().err


def test_weights_identity_hashes_pretrained_files_and_names_missing_ones(tmp_path, monkeypatch):
    import hashlib

    from spf_bench.core.errors import WeightsMissingError
    from spf_bench.metrics.weights_identity import weights_sha256
    from spf_bench.zoo.registry import folder_for

    monkeypatch.setenv("SPF_WEIGHTS_DIR", str(tmp_path / "weights"))
    with pytest.raises(WeightsMissingError, match="open_clip_model.safetensors"):
        weights_sha256("clip", "pretrained")
    target = tmp_path / "weights" / "clip"
    target.mkdir(parents=True)
    for name in ("open_clip_config.json", "open_clip_model.safetensors"):
        shutil.copy(folder_for("clip", "tiny") / name, target / name)
    first = weights_sha256("clip", "pretrained")
    assert first == weights_sha256("clip", "pretrained") != weights_sha256("clip", "tiny")
    with open(target / "open_clip_model.safetensors", "ab") as handle:
        handle.write(b"\0")  # a changed file (new size and mtime) is re-hashed
    assert weights_sha256("clip", "pretrained") != first
    assert len(first) == len(hashlib.sha256().hexdigest())


def test_world_metrics_leave_their_oracle_to_the_evaluator_and_name_zoo_networks_only():
    from spf_bench.evaluation.evaluator import backbones_for, zoo_networks_for

    assert backbones_for(("Target-Acc", "ID-Pres", "FD-CLIP")) == ("clip", "face", "oracle")
    assert zoo_networks_for(("Target-Acc", "Attr-Pres", "ID-Pres", "KID")) == ("face", "inception")
