"""``spf-bench synth train``: runs from seeds, records its recipe, resumes to the same weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spf_bench.cli import main
from spf_bench.world.loop import step_generator, train_steps
from spf_bench.world.recipe import Recipe
from spf_bench.world.trainer import STAGES


def _run_steps(total, checkpoint, stop_at=None):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)

    def step(i):
        if i == stop_at:
            raise KeyboardInterrupt
        gen = step_generator(3, i)
        x = torch.randn(8, 4, generator=gen)
        return ((model(x) - x[:, :2]) ** 2).mean()

    train_steps("toy", {"model": model}, optimizer, step, total, checkpoint, 1e-2, every=1)
    return model.weight.detach().clone()


def test_an_interrupted_training_resumes_to_the_same_weights(tmp_path):
    straight = _run_steps(6, tmp_path / "a.ckpt")
    with pytest.raises(KeyboardInterrupt):
        _run_steps(6, tmp_path / "b.ckpt", stop_at=3)  # interrupted after three steps...
    state = torch.load(tmp_path / "b.ckpt", weights_only=True)
    assert state["step"] == 3
    resumed = _run_steps(6, tmp_path / "b.ckpt")  # ...and run again to the end
    assert torch.equal(straight, resumed)
    assert "history" in torch.load(tmp_path / "b.ckpt", weights_only=True) and not torch.load(tmp_path / "b.ckpt", weights_only=True)["history"]


def test_a_resume_with_another_step_count_is_recorded(tmp_path):
    _run_steps(3, tmp_path / "c.ckpt")
    _run_steps(5, tmp_path / "c.ckpt")
    assert torch.load(tmp_path / "c.ckpt", weights_only=True)["history"] == [{"until_step": 3, "total": 3}]


def test_synth_train_writes_recipe_figures_and_weights(tmp_path, capsys):
    work = tmp_path / "world"
    args = ["synth", "train", "--work", str(work), "--stages", "oracle", "--scale", "0.005", "--train-images", "64"]
    assert main(args) == 0
    recipe = json.loads((work / "recipe.json").read_text())
    assert recipe["train_images"] == 64 and recipe["oracle"]["steps"] == 3
    done = json.loads((work / "oracle.done.json").read_text())
    assert done["recipe"] == recipe["oracle"] and set(done["fresh_accuracy"]) >= {"glasses", "style"}
    assert (work / "weights" / "oracle" / "oracle.safetensors").is_file()
    stamp = (work / "oracle.done.json").stat().st_mtime_ns
    assert main(args) == 0  # nothing done is redone
    assert (work / "oracle.done.json").stat().st_mtime_ns == stamp


def test_synth_train_refuses_a_different_rendered_set(tmp_path, capsys):
    work = tmp_path / "world"
    assert main(["synth", "train", "--work", str(work), "--stages", "oracle", "--scale", "0.005", "--train-images", "64"]) == 0
    assert main(["synth", "train", "--work", str(work), "--stages", "oracle", "--train-images", "32"]) == 2
    assert "train_images" in capsys.readouterr().err
    assert main(["synth", "train", "--work", str(work), "--stages", "nope"]) == 2


def test_adopted_stages_and_the_novel_clip_stage(tmp_path, monkeypatch):
    # The shipped networks stand in for the stages adopted; clip_novel trains the adopted
    # CLIP further on the set with the novel attributes and its twins, and writes the CLIP
    # that ships.
    from spf_bench.world import train_clip
    from spf_bench.world.attributes import NOVEL_NAMES
    from spf_bench.world.twins import TWIN_ATTRIBUTES
    from spf_bench.zoo import synth_source

    monkeypatch.setattr(train_clip, "TWIN_PAIRS", 4)  # the figure's precision is not what this test checks

    work = tmp_path / "world"
    args = ["synth", "train", "--work", str(work), "--adopt", "identity,clip,diffusion", "--stages", "clip_novel",
            "--scale", "0.005", "--train-images", "64"]
    assert main(args) == 0
    for stage in ("identity", "clip", "diffusion"):
        assert "adopted_from_shipped" in json.loads((work / f"{stage}.done.json").read_text())
    assert (work / "weights" / "clip-known" / "open_clip_model.safetensors").read_bytes() == \
        (synth_source.folder("clip") / "open_clip_model.safetensors").read_bytes()
    done = json.loads((work / "clip_novel.done.json").read_text())
    assert done["steps"] == Recipe().scaled(0.005).clip_novel.steps and set(NOVEL_NAMES) <= set(done["zero_shot_accuracy"])
    assert set(done["twin_wins"]) == set(TWIN_ATTRIBUTES) and done["recipe"]["twins"] > 0
    twins = np.load(work / "world_twins.npz")
    assert twins["images"].shape == np.load(work / "world_set.npz")["images"].shape
    assert (work / "weights" / "clip" / "open_clip_model.safetensors").read_bytes() != \
        (work / "weights" / "clip-known" / "open_clip_model.safetensors").read_bytes()
    assert main(["synth", "train", "--work", str(work), "--adopt", "vae"]) == 2  # only a stage can be adopted


def test_identity_stage_learns_from_the_world_set_and_ships_the_rest_unchanged(tmp_path, monkeypatch):
    # Retraining the identity embedder alone: every other shipped file stays byte for byte.
    from spf_bench.core.fingerprint import sha256_file
    from spf_bench.world import train_identity
    from spf_bench.world.ship import ship
    from spf_bench.zoo import synth_source

    monkeypatch.setattr(train_identity, "identification_rate", lambda *a, **k: 0.5)  # its own test is in test_synth_weights
    work = tmp_path / "world"
    args = ["synth", "train", "--work", str(work), "--adopt", "oracle,clip,clip_novel,diffusion,decoder_novel", "--stages", "identity",
            "--scale", "0.005", "--train-images", "64"]
    assert main(args) == 0
    done = json.loads((work / "identity.done.json").read_text())
    assert done["recipe"]["set"] == "world" and done["steps"] == Recipe().scaled(0.005).identity.steps
    assert json.loads((work / "recipe.json").read_text())["identity_set"] == "world"
    # it drew its portraits from the set with the novel attributes; the known set was never rendered
    assert (work / "world_set.npz").is_file() and not (work / "train_set.npz").exists()
    figures = {stage: json.loads((work / f"{stage}.done.json").read_text()) for stage in STAGES}
    manifest = json.loads((ship(work, figures, target=tmp_path / "shipped") / "manifest.json").read_text())
    shipped = synth_source.manifest()
    assert manifest["oracle"] == shipped["oracle"]
    assert {n: manifest["networks"][n] for n in ("sd15", "clip")} == {n: shipped["networks"][n] for n in ("sd15", "clip")}
    assert manifest["networks"]["face"]["w600k_r50.onnx"] == sha256_file(work / "weights" / "face" / "w600k_r50.onnx")
    assert manifest["figures"]["identity"]["recipe"]["set"] == "world"


def test_a_recipe_names_one_of_the_two_sets_for_the_identity_embedder():
    from spf_bench.core.errors import SpfError

    assert Recipe.from_dict({**Recipe().to_dict(), "identity_set": "known"}).identity_set == "known"
    with pytest.raises(SpfError, match="identity_set"):
        Recipe(identity_set="novel")
