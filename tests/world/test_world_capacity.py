"""What the shipped world pipeline's frozen parts carry: the VAE's round trip and the text
encoder's reading of each attribute's words (spf_bench.world.capacity)."""

from __future__ import annotations

import pytest
import torch

from spf_bench.world import capacity
from spf_bench.world.attributes import ATTRIBUTES, KNOWN_NAMES, NOVEL_NAMES
from spf_bench.world.captions import attribute_phrase
from spf_bench.world.measure import random_captions


@pytest.fixture(scope="module")
def world():
    from spf_bench import zoo
    from spf_bench.world.ship import load_shipped_oracle

    return zoo.load("sd15", source="synth"), load_shipped_oracle()


def test_the_vae_round_trip_keeps_the_known_attributes(world):
    pipe, oracle = world
    result = capacity.vae_round_trip(pipe.vae, oracle, n=48, seed=11)
    assert set(result) == {a.name for a in ATTRIBUTES}
    for name in ("shirt", "background", "hair_colour", "style", "hat", "glasses"):
        assert result[name]["agreement"] >= 0.9, (name, result[name])
    for name in NOVEL_NAMES:
        assert 0 < result[name]["shown"] < 48 and 0.0 <= result[name]["kept"] <= 1.0


def test_text_reading_measures_the_content_word_of_each_phrase(world):
    """The figure for one attribute equals a recomputation that finds the word's token by its
    id rather than by counting positions."""
    pipe, _ = world
    tok, encoder = pipe.tokenizer, pipe.text_encoder
    reading = capacity.text_reading(tok, encoder, n=4, seed=2)
    assert set(reading) == {a.name for a in ATTRIBUTES if a.presence}
    captions = random_captions(4, 2)

    def encode(texts):
        ids = tok(texts, padding="max_length", max_length=tok.model_max_length, return_tensors="pt").input_ids
        with torch.no_grad():
            return ids, encoder(ids)[0].float()

    _, plain = encode(captions)
    scale = plain.norm(dim=-1).mean()
    for name in ("glasses", "earrings"):
        word = tok(attribute_phrase(name, "yes")).input_ids[-2]
        ids, said = encode([f"{c}, {attribute_phrase(name, 'yes')}" for c in captions])
        change = [(said[b, pos] - plain[b, pos]).norm() for b in range(4) for pos in [int((ids[b] == word).nonzero()[-1])]]
        assert reading[name] == pytest.approx(float(torch.stack(change).mean() / scale), rel=1e-5)
    assert all(reading[name] > 0.1 for name in KNOWN_NAMES if name in reading)
