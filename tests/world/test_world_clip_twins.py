"""Twin portraits, and the shipped world CLIP reading the small attributes they isolate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spf_bench.world.attributes import NAMES, NOVEL_NAMES
from spf_bench.world.dataset import render_set
from spf_bench.world.masks import attribute_mask
from spf_bench.world.twins import TWIN_ATTRIBUTES, paired_renders, paired_wins, twin_set


def test_a_twin_differs_from_its_portrait_in_one_attribute_and_only_inside_its_mask():
    data = render_set(24, seed=3, size=32, novel=True)
    twins, flipped = twin_set(data, seed=4, size=32)
    assert len(set(flipped.tolist())) > 4  # the flipped attribute is drawn, not fixed
    for i in range(len(data)):
        name = TWIN_ATTRIBUTES[int(flipped[i])]
        assert np.flatnonzero(twins.labels[i] != data.labels[i]).tolist() == [NAMES.index(name)]
        assert twins.identities[i] == data.identities[i] and twins.seeds[i] == data.seeds[i]
        changed = (twins.images[i] != data.images[i]).any(-1)
        assert changed.any(), name
        # Both images' masks: the attribute's region where it is shown and where it is not.
        inside = attribute_mask(data.attributes(i), int(data.identities[i]), 32, name) | \
            attribute_mask(twins.attributes(i), int(twins.identities[i]), 32, name)
        assert not (changed & ~inside).any(), name


def test_paired_renders_show_the_attribute_in_the_first_image_only():
    from spf_bench.world.ship import load_shipped_oracle

    judge = load_shipped_oracle()
    for name in ("tie", "earrings", "smiling"):
        shown, hidden = paired_renders(name, 6, seed=1, size=32)
        column = NAMES.index(name)
        assert (judge.predict(shown)[:, column] == 1).all() and (judge.predict(hidden)[:, column] == 0).all(), name


@pytest.mark.usefixtures("shipped_synth_weights")
def test_the_shipped_clip_sees_each_novel_attribute_on_fresh_twins():
    # The phrase CLIP-T and the response loss use ("wearing a tie") must be closer to the
    # portrait that shows the attribute than to the same portrait without it.
    from spf_bench.zoo import synth_source
    from spf_bench.zoo.networks.clip import load_folder

    bundle = load_folder(synth_source.folder("clip"), torch.device("cpu"), torch.float32)
    wins = {name: paired_wins(bundle, name, 40, seed=21, size=32)["wins"] for name in NOVEL_NAMES}
    assert min(wins.values()) >= 0.9, wins


def test_a_batch_pairs_portraits_with_their_twins_and_masks_only_true_false_negatives():
    from spf_bench.world.captions import parse_caption
    from spf_bench.world.clip_batches import compose_batch

    data = render_set(40, seed=6, size=32, novel=True)
    twins, flipped = twin_set(data, seed=7, size=32)
    batch = compose_batch(data, twins, np.arange(16), pairs=4, rng=np.random.default_rng(0), novel=True, phrase_share=1.0)
    assert len(batch.images) == len(batch.captions) == 16
    for k in range(4):  # rows 0-3 are portraits, rows 12-15 their twins
        assert (batch.images[k] == data.images[k]).all() and (batch.images[12 + k] == twins.images[k]).all()
    pair_of = {k: k for k in range(4)} | {12 + k: k for k in range(4)}
    for k in range(16):
        if k not in pair_of:
            assert not batch.phrases[k]
            continue
        name = TWIN_ATTRIBUTES[int(flipped[pair_of[k]])]
        # With a share of 1, a pair row is a lone phrase exactly when its image shows the flipped attribute.
        assert batch.phrases[k] == (batch.attributes[k][name] == "yes")
        if batch.phrases[k]:
            assert parse_caption(batch.captions[k], complete=False) == {name: "yes"}
    assert sum(batch.phrases) == 4  # one image of each pair shows the attribute
    mask = batch.false_negatives()
    for j, caption in enumerate(batch.captions):
        stated = parse_caption(caption, complete=not batch.phrases[j])
        expected = [k != j and all(batch.attributes[k][n] == v for n, v in stated.items()) for k in range(16)]
        assert mask[:, j].tolist() == expected
    phrase_columns = [j for j in range(16) if batch.phrases[j]]
    assert mask[:, phrase_columns].any()  # a lone phrase fits other portraits of the batch
