"""The main command on the synthetic world: triples in the world's caption language, rendered
quick-training sets, the synth protocol, and a small ``spf-bench run`` end to end."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import replace

import pytest

from spf_bench.triples.vocab import CATEGORIES
from spf_bench.triples.captions import compose_triples
from spf_bench.triples.compose import compose_for
from spf_bench.core.errors import SpfError
from spf_bench.generation.sampling import GenerationSettings
from spf_bench.methods.training import QUICK_DEFAULTS, QuickTraining
from spf_bench.generation.protocol import DEFAULT_TRIPLES, settings_for
from spf_bench.world import measure
from spf_bench.world.attributes import BY_NAME
from spf_bench.world.captions import parse_caption
from spf_bench.triples.world import SUITE_CATEGORY, compose_synth_triples, targets, write_training_set

pytestmark = pytest.mark.usefixtures("single_thread")


def _target_of(triple) -> tuple[str, str]:
    parsed = parse_caption(triple.target_caption, complete=False)
    assert len(parsed) == 1, (triple.target_caption, parsed)  # exactly one attribute, nothing else
    return next(iter(parsed.items()))


# ----------------------------------------------------------------------------- triples

def test_synth_triples_are_deterministic_prefix_stable_and_seeded():
    triples = compose_synth_triples(40, seed=3)
    assert triples == compose_synth_triples(40, seed=3)
    assert compose_synth_triples(15, seed=3) == triples[:15]  # a larger set extends a smaller one
    assert compose_synth_triples(40, seed=4) != triples
    assert len({t.id for t in triples}) == 40 and len({t.seed for t in triples}) == 40


def test_synth_triples_cover_the_five_categories_evenly_with_every_target():
    triples = compose_synth_triples(53, seed=0)
    counts = Counter(t.category for t in triples)
    assert set(counts) == set(CATEGORIES)  # the tables' own category names
    assert max(counts.values()) - min(counts.values()) <= 1
    for category, group in targets().items():
        dealt = {_target_of(t) for t in triples if t.category == category}
        assert dealt == {(g.name, g.value) for g in group}, category


def test_synth_triples_parse_back_to_their_target_and_bases_leave_it_unsaid():
    for triple in compose_synth_triples(60, seed=1):
        name, value = _target_of(triple)
        assert SUITE_CATEGORY[BY_NAME[name].category] == triple.category
        if BY_NAME[name].presence:
            assert value == "yes", triple  # "without glasses" would ask the base model for nothing new
        assert name not in parse_caption(triple.base_caption, complete=False), triple
        # the joined prompt states the target once and nothing contradicts it
        assert parse_caption(triple.full_caption)[name] == value


def test_compose_for_picks_the_world_language_only_on_synth():
    assert compose_for("synth", 7, seed=2) == compose_synth_triples(7, seed=2)
    assert compose_for("tiny", 7, seed=2) == compose_triples(7, seed=2)
    with pytest.raises(SpfError, match="zero or more"):
        compose_synth_triples(-1)


# ----------------------------------------------------------------------------- protocol and training

def test_synth_protocol_and_quick_training_defaults():
    settings = settings_for("synth")
    assert (settings.height, settings.width, settings.guidance, settings.steps) == (32, 32, measure.GUIDANCE, measure.STEPS)
    assert settings.sampler == settings_for("tiny").sampler  # the suite's deterministic sampler
    assert DEFAULT_TRIPLES["synth"] % len(CATEGORIES) == 0
    assert QuickTraining().resolved("synth") == QUICK_DEFAULTS["synth"]
    assert QuickTraining(steps=3).resolved("tiny") == replace(QUICK_DEFAULTS["tiny"], steps=3)  # given fields win
    with pytest.raises(SpfError, match="only trained automatically"):
        QuickTraining().resolved("pretrained")


def test_synth_training_set_is_rendered_ground_truth_in_spf_train_format(tmp_path):
    from spf_train.data import read_rows

    folder = write_training_set(tmp_path / "set", 23, seed=10_000, size=32)
    rows = read_rows(folder)  # spf-train's own validation: every file exists and opens
    assert len(rows) == 23
    meta = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    assert Counter(m["category"] for m in meta).keys() == set(CATEGORIES)
    test_captions = {(t.category, t.target_caption) for t in compose_synth_triples(60)}
    for m in meta:
        (name, value), = parse_caption(m["target_caption"], complete=False).items()
        assert m["attributes"][name] == value  # the portrait shows what its target caption says
        assert name not in parse_caption(m["base_caption"], complete=False)
        assert (m["category"], m["target_caption"]) in test_captions  # taught in the words it is tested with
    # from a seed range of its own: no training base caption is a test base caption
    assert not {m["base_caption"] for m in meta} & {t.base_caption for t in compose_synth_triples(60)}


# ----------------------------------------------------------------------------- end to end

def test_triples_build_command_composes_synth_captions(tmp_path, capsys):
    from spf_bench.cli import main

    assert main(["triples", "build", "--weights", "synth", "--n", "5", "--steps", "2", "--out", str(tmp_path / "t"),
                 "--no-progress", "--device", "cpu"]) == 0
    manifest = json.loads((tmp_path / "t" / "manifest.json").read_text())
    assert [(t["base_caption"], t["target_caption"], t["category"]) for t in manifest["triples"]] == \
        [(t.base_caption, t.target_caption, t.category) for t in compose_synth_triples(5)]
    assert (manifest["set"]["height"], manifest["set"]["guidance"]) == (32, measure.GUIDANCE)


def test_run_on_synth_writes_a_leaderboard(tmp_path):
    from spf_bench.benchmark import RunRequest, run_benchmark

    out = tmp_path / "runs"
    request = RunRequest(
        methods=["ours"], out=out, weights="synth", n_triples=5, settings=GenerationSettings("ddim", 2, 2.0, 32, 32),
        batch_size=5, progress=False, quick=QuickTraining(steps=1, batch_size=2, n_images=5), report=lambda *_: None,
        # Seg-Cons and FID are scored end to end on tiny (test_bench_run); here the synth path
        eval_options={"metrics": ("LPIPS", "ID", "CLIP-I", "CLIP-T"), "n_bootstrap": 20},
    )
    run_benchmark(request)

    with open(out / "leaderboard.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["method"] for r in rows] == ["ours"]
    assert math.isfinite(float(rows[0]["CLIP-T"])) and math.isfinite(float(rows[0]["LPIPS"]))
    manifest = json.loads((out / "triples" / "manifest.json").read_text())
    assert manifest["set"]["weights"] == "synth"
    assert [t["target_caption"] for t in manifest["triples"]] == [t.target_caption for t in compose_synth_triples(5)]
    with open(out / "ours" / "per_pair.csv", newline="") as handle:
        assert {r["category"] for r in csv.DictReader(handle)} == set(CATEGORIES)
    summary = json.loads((out / "ours" / "summary.json").read_text())
    assert summary["identity"]["weights"] == "synth" and "Target-Acc" in summary["metrics"]
