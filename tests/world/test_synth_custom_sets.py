"""Customization sets: narrow and biased the way a user's photos are, captioned the way a
user captions, and nothing in them but the world's own renders."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from spf_bench.core.errors import SpfError
from spf_bench.world.attributes import NOVEL_NAMES
from spf_bench.world.captions import parse_caption
from spf_bench.world.custom_sets import Bias, CustomSet, portraits, regularities, write
from spf_bench.world.render import render


def test_a_customization_set_is_narrow_and_biased_and_its_control_is_not():
    spec = CustomSet(images=400, identities=4, biases=(Bias("background", "green", 0.8), Bias("shirt", "red", 0.7)))
    biased, control = portraits(spec), portraits(CustomSet(images=400, biases=spec.biases, control=True))
    held, held_control = regularities(biased, spec), regularities(control, spec)
    assert held["distinct_identities"] == 4 and held_control["distinct_identities"] > 300
    assert 0.75 < held["background"]["shares"]["green"] < 0.85 and 0.65 < held["shirt"]["shares"]["red"] < 0.75
    assert held_control["background"]["shares"]["green"] < 0.35 and held_control["shirt"]["shares"]["red"] < 0.42
    # Both teach the same attributes, equally often.
    count = Counter(r["target_caption"] for r in biased)
    assert count == Counter(r["target_caption"] for r in control) and len(count) == len(NOVEL_NAMES)


def test_captions_say_the_target_and_mostly_leave_the_regularities_unsaid():
    spec = CustomSet(images=300, say_biased=0.1)
    rows = portraits(spec)
    for row in rows:
        (name, value), = parse_caption(row["target_caption"], complete=False).items()
        assert row["attributes"][name] == value == "yes"  # the portrait shows what is taught
        assert name not in parse_caption(row["base_caption"], complete=False)  # said once, as the target
        others = [n for n in NOVEL_NAMES if n != name]
        assert all(row["attributes"][n] == "no" for n in others)
    held = regularities(rows, spec)
    for bias in spec.biases:
        assert held[bias.attribute]["said_in_captions"] < 0.2, bias.attribute
    # An attribute that is not biased is said as the world says it (most of the time).
    said_hair = np.mean(["hair_colour" in parse_caption(r["base_caption"], complete=False) for r in rows])
    assert said_hair > 0.7


def test_the_written_set_is_the_worlds_renders_of_what_it_records(tmp_path):
    from spf_train.data import read_rows

    spec = CustomSet(images=12, seed=3)
    folder = write(tmp_path / "set", spec, size=32)
    assert len(read_rows(folder)) == 12  # spf-train reads it
    from PIL import Image

    meta = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    for row in meta:
        # No planted mark: each image is exactly the render of its attributes and identity.
        drawn = np.asarray(Image.open(folder / row["file_name"]).convert("RGB"))
        assert np.array_equal(drawn, render(row["attributes"], row["identity"], row["render_seed"], 32))
    saved = json.loads((folder / "customization.json").read_text())
    assert saved["spec"]["identities"] == 4 and saved["held"]["portraits"] == 12
    assert portraits(spec) == portraits(CustomSet(images=12, seed=3))  # deterministic for its seed


@pytest.mark.parametrize("text, words", [
    ("background=purple:0.8", "not ATTRIBUTE=VALUE:SHARE"), ("background=green", "no share"),
    ("background=green:1.5", "between 0 and 1"), ("freckles=yes:0.5", "known attribute"),
])
def test_a_bad_bias_is_refused_in_one_sentence(text, words):
    with pytest.raises(SpfError, match=words):
        Bias.parse(text)


def test_bad_specs_are_refused():
    with pytest.raises(SpfError, match="both taught and biased"):
        CustomSet(targets=("glasses",), biases=(Bias("glasses", "yes", 0.5),))
    with pytest.raises(SpfError, match="at least one identity"):
        CustomSet(identities=0)
    with pytest.raises(SpfError, match="not a presence attribute"):
        CustomSet(targets=("shirt",))


def test_customset_command_writes_a_set_and_its_control(tmp_path, capsys):
    from spf_bench.cli import main

    assert main(["synth", "customset", "--out", str(tmp_path / "a"), "--images", "10", "--identities", "2",
                 "--bias", "background=grey:0.9"]) == 0
    saved = json.loads((tmp_path / "a" / "customization.json").read_text())
    assert saved["spec"]["biases"] == [{"attribute": "background", "value": "grey", "share": 0.9}]
    assert saved["held"]["distinct_identities"] <= 2
    assert main(["synth", "customset", "--out", str(tmp_path / "b"), "--images", "10", "--control"]) == 0
    assert "wrote 10 portraits" in capsys.readouterr().out


def test_the_main_command_on_synth_asks_for_novel_targets_and_trains_on_the_customization_set(tmp_path, monkeypatch):
    from spf_bench.methods.training import QuickTraining, training_data
    from spf_bench.world.attributes import BY_NAME
    from spf_bench.triples.world import compose_synth_triples

    asked = {name for t in compose_synth_triples(10) for name in parse_caption(t.target_caption, complete=False)}
    assert asked == set(NOVEL_NAMES) and all(BY_NAME[n].novel for n in asked)
    monkeypatch.setenv("SPF_CACHE", str(tmp_path))
    folder = training_data("synth", QuickTraining(n_images=10))
    saved = json.loads((folder / "customization.json").read_text())
    assert saved["spec"]["control"] is False and saved["held"]["distinct_identities"] <= 4
    meta = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    taught = {t.target_caption for t in compose_synth_triples(10)}
    assert {m["target_caption"] for m in meta} == taught  # taught in the words the triples ask with
    by_caption = {t.target_caption: t.category for t in compose_synth_triples(10)}
    assert all(m["category"] == by_caption[m["target_caption"]] for m in meta)  # the suite's category names
