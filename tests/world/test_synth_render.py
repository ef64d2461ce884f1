"""The synthetic world's renderer, captions and masks."""

from __future__ import annotations

import numpy as np
import pytest

from spf_bench.world.attributes import ATTRIBUTES, BY_NAME, sample_attributes
from spf_bench.world.captions import compose_caption, parse_caption
from spf_bench.world.masks import attribute_masks
from spf_bench.world.render import render

SIZE = 32


def _portraits(n, seed=0):
    rng = np.random.default_rng(seed)
    return [(sample_attributes(rng), int(rng.integers(1000)), int(rng.integers(2**31))) for _ in range(n)]


def test_every_category_of_tab3_is_present():
    categories = {a.category for a in ATTRIBUTES}
    assert {"facial attributes", "clothing", "image style", "appearance", "accessories", "background"} <= categories
    assert set(BY_NAME["style"].values) == {"photo", "pencil sketch", "cartoon"}


def test_render_is_deterministic_and_seed_moves_only_the_grain():
    attrs, identity, seed = _portraits(1)[0]
    attrs = {**attrs, "style": "photo"}
    a = render(attrs, identity, seed, SIZE)
    assert a.shape == (SIZE, SIZE, 3) and a.dtype == np.uint8
    assert np.array_equal(a, render(attrs, identity, seed, SIZE))
    other = render(attrs, identity, seed + 1, SIZE)
    assert not np.array_equal(a, other)
    assert np.abs(a.astype(int) - other.astype(int)).mean() < 4  # grain, not a different picture


def test_identity_changes_the_face_and_only_the_face():
    attrs, identity, seed = _portraits(1, seed=3)[0]
    attrs = {**attrs, "style": "cartoon", "hat": "no", "hair_length": "short"}
    a, b = render(attrs, identity, seed, SIZE), render(attrs, identity + 1, seed, SIZE)
    changed = np.abs(a.astype(int) - b.astype(int)).sum(-1) > 0
    assert changed.any()
    rows, cols = np.nonzero(changed)
    assert rows.min() >= SIZE * 0.15 and rows.max() <= SIZE * 0.9  # never the corners of the background


@pytest.mark.parametrize("index", range(12))
def test_changing_one_attribute_changes_pixels_only_inside_its_mask(index):
    attrs, identity, seed = _portraits(12, seed=7)[index]
    masks = attribute_masks(attrs, identity, SIZE)
    base = render(attrs, identity, seed, SIZE)
    for attr in ATTRIBUTES:
        for value in attr.values:
            if value == attrs[attr.name]:
                continue
            changed = np.abs(render({**attrs, attr.name: value}, identity, seed, SIZE).astype(int) - base.astype(int)).sum(-1) > 0
            assert changed.any(), f"{attr.name}={value} draws nothing"
            outside = changed & ~masks[attr.name]
            assert not outside.any(), f"{attr.name}: {int(outside.sum())} changed pixels outside its mask"


def test_masks_sit_where_the_parts_are():
    attrs = {"smiling": "yes", "beard": "yes", "shirt": "red", "style": "photo", "hair_colour": "black",
             "hair_length": "short", "skin": "tan", "glasses": "yes", "hat": "yes", "background": "green"}
    masks = attribute_masks(attrs, 5, SIZE)
    rows = np.arange(SIZE)[:, None] / SIZE * np.ones((1, SIZE))

    def centre(name):
        return float(rows[masks[name]].mean())

    assert masks["style"].all()
    assert masks["background"][0, 0] and masks["background"][0, -1] and not masks["background"][SIZE // 2, SIZE // 2]
    assert centre("hat") < centre("glasses") < centre("smiling") < centre("shirt")
    assert centre("beard") > centre("glasses")
    for name, mask in masks.items():
        assert 0 < mask.mean() <= 1, name
    assert masks["glasses"].mean() < 0.2 and masks["smiling"].mean() < 0.1


def test_captions_parse_back_to_the_attributes_that_made_them():
    rng = np.random.default_rng(11)
    orders = set()
    for _ in range(400):
        attrs = sample_attributes(rng)
        caption = compose_caption(attrs, rng)
        parsed = parse_caption(caption)
        assert all(attrs[k] == v for k, v in parsed.items()), (caption, parsed)
        for attr in ATTRIBUTES:
            if attr.presence:
                assert parsed[attr.name] == attrs[attr.name], caption  # an unsaid presence attribute is absent
        orders.add(tuple(p.split()[0] for p in caption.split(", ")[1:3]))
    assert len(orders) > 10  # phrase order varies


def test_captions_leave_categorical_attributes_unsaid_sometimes():
    rng = np.random.default_rng(12)
    said = [parse_caption(compose_caption(sample_attributes(rng), rng)) for _ in range(300)]
    for name in ("shirt", "background", "skin", "hair_colour", "style", "smiling"):
        share = np.mean([name in p for p in said])
        assert 0.7 < share < 0.97, (name, share)


def test_world_metrics_on_exact_labels():
    from spf_bench.world.attributes import NAMES, index_of, value_of
    from spf_bench.world.world_metrics import pair_scores

    attrs = {"smiling": "no", "beard": "no", "shirt": "red", "style": "photo", "hair_colour": "black",
             "hair_length": "short", "skin": "tan", "glasses": "no", "hat": "no", "background": "green"}
    original = np.array([index_of(k, value_of(attrs, k)) for k in NAMES])
    custom = original.copy()
    custom[NAMES.index("glasses")] = index_of("glasses", "yes")
    assert pair_scores(original, custom, "wearing glasses") == {"target_accuracy": 1.0, "attribute_preservation": 1.0}
    custom[NAMES.index("background")] = index_of("background", "blue")  # polluted: the background moved too
    scores = pair_scores(original, custom, "wearing glasses")
    assert scores["target_accuracy"] == 1.0 and scores["attribute_preservation"] == (len(NAMES) - 2) / (len(NAMES) - 1)
    assert pair_scores(original, original, "wearing glasses")["target_accuracy"] == 0.0
