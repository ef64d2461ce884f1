"""Stage 2 on tiny: what trains, what stays frozen, and what a few steps achieve."""

from __future__ import annotations

import json

import pytest
import torch

from spf_train.config import Stage1Config, Stage2Config
from spf_train.data import PortraitDataset, make_training_set
from spf_train.loop import TrainingLoop
from spf_train.models import load_pipeline
from spf_train.stage1 import train_stage1
from spf_train.stage2 import DualPathTask
from spf_train.trainable import is_cross_attention_parameter
from support.training import fresh_copy

pytestmark = pytest.mark.usefixtures("single_thread")

CAPTIONS = [("a woman, long hair", "wearing glasses"), ("a man, short hair", "in a hat"),
            ("an old man, a beard", "smiling"), ("a girl, curly hair", "with earrings")]


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before, module):
    after = module.state_dict()
    return {k for k in before if not torch.equal(before[k], after[k])}


@pytest.fixture(scope="module")
def sets(tiny_pipe, tmp_path_factory):
    root = tmp_path_factory.mktemp("stage2-sets")
    train = PortraitDataset(make_training_set(tiny_pipe, CAPTIONS[:2], root / "train", steps=2), 64)
    held_out = PortraitDataset(make_training_set(tiny_pipe, CAPTIONS[2:], root / "held", steps=2, seed=10), 64)
    return train, held_out


@pytest.fixture(scope="module")
def clip(tiny_clip):
    return tiny_clip


@pytest.fixture(scope="module")
def stage2_run(tiny_pipe, clip, sets, tmp_path_factory):
    train, held_out = sets
    root = tmp_path_factory.mktemp("stage2-run")
    stage1 = train_stage1(Stage1Config(output_dir=str(root / "s1"), train_batch_size=2, max_steps=2, checkpoint_every=0,
                                       learning_rate=1e-3, device="cpu"),
                          pipe=fresh_copy(tiny_pipe), dataset=train, report=lambda m: None)
    config = Stage2Config(output_dir=str(root / "s2"), init_from=str(stage1), train_batch_size=2, max_steps=3,
                          checkpoint_every=0, learning_rate=1e-3, device="cpu")
    task = DualPathTask(config, pipe=fresh_copy(tiny_pipe), dataset=train, clip=fresh_copy(clip), report=lambda m: None)
    before = {"response": _snapshot(task.unet), "reference": _snapshot(task.reference_unet),
              "vae": _snapshot(task.vae), "text_encoder": _snapshot(task.text_encoder)}
    held_before = task.evaluate(held_out, seed=5, num_batches=1)
    out = TrainingLoop(task, report=lambda m: None).run()
    held_after = task.evaluate(held_out, seed=5, num_batches=1)
    return {"task": task, "before": before, "held_before": held_before, "held_after": held_after, "out": out}


def test_only_cross_attention_trains_and_the_frozen_networks_stay_bit_identical(stage2_run):
    task, before = stage2_run["task"], stage2_run["before"]
    changed = _changed(before["response"], task.unet)
    assert changed, "no trainable weight changed"
    assert all(is_cross_attention_parameter(name) for name in changed)
    assert not _changed(before["reference"], task.reference_unet)
    assert not _changed(before["vae"], task.vae)
    assert not _changed(before["text_encoder"], task.text_encoder)
    # the output is a pipeline folder that says how it was made
    saved = json.loads((stage2_run["out"] / "spf_config.json").read_text())
    assert saved["trainable"] == "xattn" and saved["config_class"] == "Stage2Config"
    assert (stage2_run["out"] / "model_index.json").is_file()


def test_a_few_stage2_steps_lower_alignment_losses_on_held_out_batches(stage2_run):
    before, after = stage2_run["held_before"], stage2_run["held_after"]
    assert after["attn"] + after["unet"] < before["attn"] + before["unet"]


def test_lora_on_cross_attention_trains_only_lora_and_saves_a_merged_pipeline(tiny_pipe, clip, sets, tmp_path):
    train, _ = sets
    config = Stage2Config(output_dir=str(tmp_path / "lora-x"), trainable="lora-xattn", train_batch_size=1, max_steps=1,
                          checkpoint_every=0, learning_rate=1e-2, no_re=True, device="cpu", init_from="original")
    task = DualPathTask(config, pipe=fresh_copy(tiny_pipe), dataset=train, clip=fresh_copy(clip), report=lambda m: None)
    trainable = {n for n, p in task.unet.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n and ".attn2." in n for n in trainable)
    out = TrainingLoop(task, report=lambda m: None).run()
    # saved merged into plain weights: only cross-attention projections differ from the original
    saved = load_pipeline(str(out)).unet.state_dict()
    original = tiny_pipe.unet.state_dict()
    assert not any("lora" in k for k in saved)
    moved = {k for k in original if not torch.equal(original[k], saved[k])}
    assert moved and all(is_cross_attention_parameter(k) for k in moved)


def test_cross_attention_adapter_starts_as_identity_trains_alone_and_reloads(tiny_pipe, clip, sets, tmp_path):
    from spf_train.xattn_adapter import ADAPTER_FILE, load_xattn_adapter

    train, _ = sets
    config = Stage2Config(output_dir=str(tmp_path / "adapter"), trainable="adapter-xattn", train_batch_size=1, max_steps=1,
                          checkpoint_every=0, learning_rate=1e-2, no_re=True, device="cpu", init_from="original")
    task = DualPathTask(config, pipe=fresh_copy(tiny_pipe), dataset=train, clip=fresh_copy(clip), report=lambda m: None)
    torch.manual_seed(0)
    z, t = torch.randn(1, 4, 8, 8), torch.tensor([300])
    text = torch.randn(1, 77, 32)
    with torch.no_grad():
        assert torch.allclose(task.unet(z, t, text).sample, tiny_pipe.unet(z, t, text).sample, atol=1e-5)
    trainable = {n for n, p in task.unet.named_parameters() if p.requires_grad}
    assert trainable and all(".attn2.processor.branch." in n for n in trainable)
    loop = TrainingLoop(task, report=lambda m: None)
    loop.train_step()
    with torch.no_grad():
        trained_eps = task.unet(z, t, text).sample
    out = loop.run()
    assert (out / ADAPTER_FILE).is_file()
    loaded = load_pipeline(str(out)).unet
    assert all(torch.equal(v, tiny_pipe.unet.state_dict()[k]) for k, v in loaded.state_dict().items())  # base frozen
    load_xattn_adapter(loaded, out)
    with torch.no_grad():
        reloaded_eps = loaded(z, t, text).sample
    assert torch.allclose(reloaded_eps, trained_eps, atol=1e-5)
    assert not torch.allclose(reloaded_eps, tiny_pipe.unet(z, t, text).sample, atol=1e-4)
