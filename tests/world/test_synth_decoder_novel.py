"""Stage ``decoder_novel``: only the VAE's decoder learns the novel attributes, and the shipped
VAE's round trip keeps them."""

from __future__ import annotations

import functools
import json

import pytest
from safetensors.torch import load_file

from spf_bench.world import capacity
from spf_bench.world.attributes import NOVEL_NAMES
from spf_bench.world.recipe import Recipe, Stage
from spf_bench.world.trainer import STAGES, WorldTrainer

VAE_FILE = "vae/diffusion_pytorch_model.safetensors"


def test_the_stage_changes_only_the_decoder_and_ships_the_rest_of_the_pipeline_byte_for_byte(tmp_path, monkeypatch):
    monkeypatch.setattr(capacity, "vae_round_trip", functools.partial(capacity.vae_round_trip, n=24))
    recipe = Recipe().scaled(0.005)
    recipe.train_images = recipe.world_images = 64
    recipe.decoder_novel = Stage(steps=3, batch=8, lr=5e-2, seed=18)  # a rate that moves every fp16 weight
    trainer = WorldTrainer(tmp_path / "world", recipe)
    trainer.adopt(tuple(s for s in STAGES if s != "decoder_novel"))
    figures = trainer.run(("decoder_novel",))["decoder_novel"]
    known, novel = trainer.weights_dir("sd15-known"), trainer.weights_dir("sd15")

    files = sorted(str(p.relative_to(known)) for p in known.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(novel)) for p in novel.rglob("*") if p.is_file())
    for rel in files:
        if rel != VAE_FILE:  # the VAE's config too
            assert (known / rel).read_bytes() == (novel / rel).read_bytes(), rel
    before, after = load_file(known / VAE_FILE), load_file(novel / VAE_FILE)
    assert before.keys() == after.keys()
    frozen = [k for k in before if k.startswith(("encoder.", "quant_conv."))]
    trained = [k for k in before if k.startswith(("decoder.", "post_quant_conv."))]
    assert frozen and trained and len(frozen) + len(trained) == len(before)
    assert all(before[k].dtype == after[k].dtype and before[k].equal(after[k]) for k in frozen)
    changed = [k for k in trained if not before[k].equal(after[k])]
    assert len(changed) >= 0.9 * len(trained), f"only {len(changed)} of {len(trained)} decoder tensors changed"

    assert figures["recipe"] == {"steps": 3, "batch": 8, "lr": 5e-2, "seed": 18} and figures["steps"] == 3
    for key in ("round_trip_before", "round_trip_after"):
        assert set(figures[key]["novel_kept"]) == set(NOVEL_NAMES)
    done = trainer.work / "decoder_novel.done.json"
    stamp = done.stat().st_mtime_ns
    trainer.run(("decoder_novel",))  # finished: not redone
    assert done.stat().st_mtime_ns == stamp and json.loads(done.read_text())["steps"] == 3


def test_decoder_novel_refuses_to_start_without_the_known_pipeline(tmp_path):
    from spf_bench.core.errors import SpfError

    recipe = Recipe().scaled(0.005)
    recipe.train_images = recipe.world_images = 16
    trainer = WorldTrainer(tmp_path / "world", recipe)
    trainer.adopt(("oracle",))
    with pytest.raises(SpfError, match="sd15-known.*diffusion"):
        trainer.run(("decoder_novel",))


def test_a_recipe_saved_before_the_stage_loads_with_its_default():
    saved = Recipe().to_dict()
    del saved["decoder_novel"]
    assert Recipe.from_dict(saved).decoder_novel == Recipe().decoder_novel


def test_the_shipped_vae_round_trip_keeps_the_novel_attributes():
    # 200 fresh renders, a sample apart from the one docs/synth.md reports. The shipped decoder
    # kept freckles 0.87, tie 1.00, watercolour 1.00, hair streak 0.97 and earrings 0.68 of
    # them; the known-set decoder it refines kept 0.58, 0.78, 0.77, 0.23 and 0.52, so every
    # bound below fails on that one.
    from spf_bench import zoo
    from spf_bench.world.ship import load_shipped_oracle

    result = capacity.vae_round_trip(zoo.load("sd15", source="synth").vae, load_shipped_oracle(), n=200, seed=13)
    bounds = {"freckles": 0.8, "tie": 0.9, "watercolour": 0.9, "hair_streak": 0.9, "earrings": 0.55}
    kept = {name: result[name]["kept"] for name in NOVEL_NAMES}
    assert all(kept[name] >= bounds[name] for name in NOVEL_NAMES), kept
    known = {name: entry["agreement"] for name, entry in result.items() if name not in NOVEL_NAMES}
    assert min(known.values()) >= 0.95, known
