"""The world's novel attributes: the known world is left bit-identical, and they are drawn
with exact masks."""

from __future__ import annotations

import json
from pathlib import Path

from support.known_world_sample import digests

SNAPSHOT = Path(__file__).parent / "snapshots" / "known_world.json"


def test_known_world_is_bit_identical_to_its_stored_digests():
    stored, now = json.loads(SNAPSHOT.read_text()), digests()
    assert now["captions"] == stored["captions"], "captions of the known world changed"
    assert now["render_set"] == stored["render_set"], "the known training set's sampling or pixels changed"
    changed = [k for k, v in stored["renders"].items() if now["renders"][k] != v]
    assert not changed, f"renders changed: {changed}"
    moved = [k for k, v in stored["masks"].items() if now["masks"][k] != v]
    assert not moved, f"masks of known attributes changed: {moved}"


# ----------------------------------------------------------------------------- the novel attributes

import numpy as np
import pytest

from spf_bench.world.attributes import ATTRIBUTES, BY_NAME, KNOWN_NAMES, NOVEL_NAMES, sample_attributes
from spf_bench.world.captions import attribute_phrase, compose_caption, parse_caption
from spf_bench.world.masks import attribute_masks
from spf_bench.world.render import render

SIZE = 32


def _novel_portraits(n, seed):
    rng = np.random.default_rng([0xF00D, seed])
    return [(sample_attributes(rng, novel=True), int(rng.integers(1000)), int(rng.integers(2**31))) for _ in range(n)]


def test_one_novel_attribute_per_tab3_category_and_all_presence():
    categories = {BY_NAME[n].category for n in NOVEL_NAMES}
    assert categories == {"facial attributes", "clothing", "image style", "appearance", "accessories"}
    assert all(BY_NAME[n].presence and BY_NAME[n].values == ("no", "yes") for n in NOVEL_NAMES)


@pytest.mark.parametrize("index", range(10))
def test_on_novel_portraits_every_change_stays_inside_its_mask(index):
    # Novel attributes switched on at random, the watercolour wash included, and every
    # attribute (known and novel) toggled in turn.
    attrs, identity, seed = _novel_portraits(10, seed=5)[index]
    if index % 2:
        attrs = {**attrs, "watercolour": "yes"}
    masks = attribute_masks(attrs, identity, SIZE)
    base = render(attrs, identity, seed, SIZE)
    for attr in ATTRIBUTES:
        for value in attr.values:
            if value == attrs[attr.name]:
                continue
            changed = np.abs(render({**attrs, attr.name: value}, identity, seed, SIZE).astype(int) - base.astype(int)).sum(-1) > 0
            assert changed.any(), f"{attr.name}={value} draws nothing"
            outside = changed & ~masks[attr.name]
            assert not outside.any(), f"{attr.name}={value}: {int(outside.sum())} changed pixels outside its mask"


@pytest.mark.parametrize("name", NOVEL_NAMES)
def test_each_novel_attribute_changes_only_its_mask_on_every_style(name):
    for style in BY_NAME["style"].values:
        for attrs, identity, seed in _novel_portraits(4, seed=11):
            attrs = {**attrs, "style": style, **{n: "no" for n in NOVEL_NAMES}}
            on = render({**attrs, name: "yes"}, identity, seed, SIZE).astype(int)
            off = render(attrs, identity, seed, SIZE).astype(int)
            changed = np.abs(on - off).sum(-1) > 0
            assert changed.sum() >= 4, f"{name} on {style} changes only {int(changed.sum())} pixels"
            for mask_of in (attrs, {**attrs, name: "yes"}):
                assert not (changed & ~attribute_masks(mask_of, identity, SIZE)[name]).any(), (name, style)


def test_a_dictionary_without_the_novel_attributes_renders_as_one_with_them_absent():
    attrs, identity, seed = _novel_portraits(1, seed=2)[0]
    known = {k: attrs[k] for k in KNOWN_NAMES}
    absent = {**known, **{n: "no" for n in NOVEL_NAMES}}
    assert np.array_equal(render(known, identity, seed, SIZE), render(absent, identity, seed, SIZE))


def test_known_sampling_never_draws_a_novel_attribute_and_novel_sampling_does():
    rng = np.random.default_rng(0)
    known = [sample_attributes(rng) for _ in range(300)]
    assert all(a[n] == "no" for a in known for n in NOVEL_NAMES)
    rng = np.random.default_rng(0)
    drawn = [sample_attributes(rng, novel=True) for _ in range(300)]
    for n in NOVEL_NAMES:
        assert 0.25 < np.mean([a[n] == "yes" for a in drawn]) < 0.45, n


def test_novel_captions_parse_back_and_known_captions_never_name_them():
    rng = np.random.default_rng(4)
    for attrs, _, _ in _novel_portraits(200, seed=3):
        caption = compose_caption(attrs, rng, novel_absent=True)
        parsed = parse_caption(caption)
        for n in NOVEL_NAMES:
            assert parsed[n] == attrs[n], caption
    words = {w for n in NOVEL_NAMES for v in (0, 1) for w in attribute_phrase(n, "yes", v).split()} - {"with", "wearing", "a", "in", "of", "hair"}
    for _ in range(300):
        caption = compose_caption(sample_attributes(rng), rng)
        assert not words & set(caption.replace(",", " ").split()), caption


# ----------------------------------------------------------------------------- the shipped models and the novel attributes

def test_the_shipped_oracle_reads_every_attribute_on_fresh_renders_with_novel_ones():
    from spf_bench.world.measure import oracle_accuracy
    from spf_bench.world.ship import load_shipped_oracle

    acc = oracle_accuracy(load_shipped_oracle(), n=300, seed=77)
    low = {k: v for k, v in acc.items() if v < 0.98}
    assert not low, f"the oracle reads these below 0.98: {low}"
    assert set(NOVEL_NAMES) <= set(acc)


def test_the_shipped_base_pipeline_does_not_draw_the_novel_attributes_when_asked():
    import torch

    from spf_bench import zoo
    from spf_bench.world.measure import novel_draw_rates
    from spf_bench.world.ship import load_shipped_oracle

    torch.manual_seed(0)
    rates = novel_draw_rates(zoo.load("sd15", source="synth"), load_shipped_oracle(), n=20, seed=5)
    assert set(rates) == set(NOVEL_NAMES)
    high = {k: r["rate"] for k, r in rates.items() if r["rate"] > 0.1}
    assert not high, f"the shipped pipeline draws these when asked more than 10% of the time: {high}"
