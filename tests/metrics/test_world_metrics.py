"""The synthetic world's exact metrics in the evaluator: known edits give known scores."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from spf_bench.core.errors import SpfError
from spf_bench.evaluation.evaluator import PER_PAIR_COLUMNS, EvalOptions, evaluate_run
from spf_bench.evaluation.features_cache import FeatureCache
from spf_bench.metrics import WORLD_METRIC_ORDER
from spf_bench.metrics.backbones import OracleBackbone
from spf_bench.world.attributes import NAMES
from support.world_cases import readable_cases, write_world_method, write_world_triples

pytestmark = [pytest.mark.usefixtures("shipped_synth_weights"),  # shipped with the package: missing fails
              pytest.mark.usefixtures("single_thread")]

WORLD = WORLD_METRIC_ORDER
N = 6


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A triple set, three method runs and the networks every evaluation here shares."""
    from spf_bench.world.ship import load_shipped_oracle

    oracle = load_shipped_oracle()
    size = oracle.config["size"]
    root = tmp_path_factory.mktemp("world")
    cases = readable_cases(oracle, N, size)
    triples = write_world_triples(root / "triples", cases, size)
    runs = {m: write_world_method(root / "runs", m, cases, size) for m in ("clean", "polluted", "stranger")}
    return {"triples": triples, "runs": runs, "cases": cases, "networks": {"oracle": oracle}, "root": root}


@pytest.fixture(scope="module")
def scored(world):
    """Each method scored once on ID and CLIP-T: under synth the three world metrics join them."""
    out = {}
    for method, folder in world["runs"].items():
        out[method] = evaluate_run(world["triples"], folder, weights="synth", metrics=("ID", "CLIP-T"), n_bootstrap=200,
                                   cache=FeatureCache(world["root"] / "cache"), networks=world["networks"], progress=False)
    return out


def _per_pair(folder) -> list[dict]:
    with open(folder / "per_pair.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_clean_edit_hits_the_target_and_keeps_every_other_attribute(world, scored):
    folder = world["runs"]["clean"]
    rows = _per_pair(folder)
    assert tuple(rows[0]) == (*PER_PAIR_COLUMNS[:-2], *WORLD, "face_found", "reason")
    assert [float(r["Target-Acc"]) for r in rows] == [1.0] * N
    assert [float(r["Attr-Pres"]) for r in rows] == [1.0] * N
    summary = json.loads((folder / "summary.json").read_text())
    assert list(summary["metrics"]) == ["ID", "CLIP-T", *WORLD]
    for name in WORLD:
        entry = summary["metrics"][name]
        assert entry["higher_is_better"] is True and entry["n"] == N
        assert entry["record"]["fingerprint"] and entry["record"]["weights"] == "synth"
        for category, values in summary["per_category"].items():
            assert name in values, category
    assert summary["metrics"]["Target-Acc"]["value"] == 1.0 and summary["metrics"]["Attr-Pres"]["value"] == 1.0
    assert summary["metrics"]["Target-Acc"]["record"]["backbone"] == "oracle"
    assert summary["metrics"]["ID-Pres"]["record"]["backbone"] == "face"
    # ID-Pres reads the same face features as ID (the world's recogniser under synth)
    assert [r["ID-Pres"] for r in rows] == [r["ID"] for r in rows]


def test_one_more_changed_attribute_costs_exactly_one_share(scored):
    polluted = scored["polluted"]
    kept = len(NAMES) - 1  # every attribute the target does not name
    assert np.allclose(polluted.scores.per_pair["Target-Acc"], 1.0)
    assert np.allclose(polluted.scores.per_pair["Attr-Pres"], 1.0 - 1.0 / kept, rtol=0, atol=1e-12)
    assert polluted.summary["metrics"]["Attr-Pres"]["value"] == pytest.approx(1.0 - 1.0 / kept, abs=1e-12)


def test_identity_preservation_is_higher_for_the_same_identity(scored):
    same = scored["clean"].scores.per_pair["ID-Pres"]
    other = scored["stranger"].scores.per_pair["ID-Pres"]
    assert np.isfinite(same).all() and np.isfinite(other).all()
    assert same.mean() > other.mean()
    assert (same > other).mean() >= 0.8  # pair by pair too, with room for one hard pair
    # The stranger's edit is as clean as the clean one's: only the identity metric tells them apart.
    assert np.array_equal(scored["stranger"].scores.per_pair["Attr-Pres"], scored["clean"].scores.per_pair["Attr-Pres"])


def test_oracle_loads_once_per_run_and_its_features_are_cached(world, monkeypatch, tmp_path):
    from spf_bench.world import ship

    loads, encoded = [], []
    real_load, real_encode = ship.load_shipped_oracle, OracleBackbone.encode
    monkeypatch.setattr(ship, "load_shipped_oracle", lambda: loads.append(1) or real_load())
    monkeypatch.setattr(OracleBackbone, "encode", lambda self, images: encoded.append(len(images)) or real_encode(self, images))
    networks = {}  # what 'spf-bench run' shares between its methods
    cache = FeatureCache(tmp_path / "cache")
    for method in ("clean", "polluted"):
        evaluate_run(world["triples"], world["runs"][method], weights="synth", metrics=("CLIP-T",), n_bootstrap=20,
                     networks=networks, cache=cache, write=False, progress=False)
    assert loads == [1] and "oracle" in networks
    assert sum(encoded) == 3 * N  # the originals once, then from the feature cache
    evaluate_run(world["triples"], world["runs"]["clean"], weights="synth", metrics=("CLIP-T",), n_bootstrap=20,
                 networks=networks, cache=cache, write=False, progress=False)
    assert sum(encoded) == 3 * N and loads == [1]


def test_world_metrics_join_their_groups_only_under_synth():
    assert EvalOptions(weights="synth").resolved().metrics[-3:] == WORLD
    assert EvalOptions(metrics=("LPIPS",), weights="synth").resolved().metrics == ("LPIPS", "Attr-Pres", "ID-Pres")
    assert EvalOptions(metrics=("CLIP-T", "Target-Acc"), weights="synth").resolved().metrics == ("CLIP-T", "Target-Acc")
    assert EvalOptions(weights="tiny").resolved().metrics == EvalOptions().metrics  # the eight, nothing added
    assert EvalOptions(weights="synth", world_metrics=False).resolved().metrics == EvalOptions().metrics
    with pytest.raises(SpfError, match="--weights synth"):
        EvalOptions(metrics=("ID", "Attr-Pres"), weights="tiny").resolved()


def test_a_target_caption_from_outside_the_world_is_refused(world, tmp_path):
    import shutil

    triples = shutil.copytree(world["triples"], tmp_path / "triples")
    manifest = json.loads((triples / "manifest.json").read_text())
    manifest["triples"][1]["target_caption"] = "in a park"
    (triples / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SpfError, match=f"triple {manifest['triples'][1]['id']}"):
        evaluate_run(triples, world["runs"]["clean"], weights="synth", metrics=("CLIP-T",), write=False, progress=False,
                     networks=world["networks"])
    # without the world's metrics the set scores like any other
    result = evaluate_run(triples, world["runs"]["clean"], weights="synth", metrics=("CLIP-T",), world_metrics=False,
                          write=False, progress=False, networks=world["networks"], n_bootstrap=20)
    assert list(result.summary["metrics"]) == ["CLIP-T"]


def test_cli_prints_the_world_metrics(world, tmp_path, capsys):
    from spf_bench.cli import main

    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert ", ".join(WORLD) in " ".join(capsys.readouterr().out.split())  # the CLI lists the evaluator's order
    code = main(["evaluate", "--triples", str(world["triples"]), "--images", str(world["runs"]["clean"]), "--weights", "synth",
                 "--out", str(tmp_path / "scores"), "--metrics", "Target-Acc,Attr-Pres", "--bootstrap", "50", "--no-cache"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Target-Acc 1.0000" in printed and "Attr-Pres  1.0000" in printed and "ID-Pres" not in printed
