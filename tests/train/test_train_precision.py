"""Mixed precision: half-precision compute with fp32 trainable weights."""

from __future__ import annotations

import pytest
import torch

from spf_train.config import Stage1Config, Stage2Config
from spf_train.data import PortraitDataset, make_training_set
from spf_train.diffusion_task import DiffusionTask
from spf_train.loop import TrainingLoop
from spf_train.stage2 import DualPathTask
from support.training import fresh_copy

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def portrait_set(tiny_pipe, tmp_path_factory):
    folder = make_training_set(tiny_pipe, [("a woman, long hair", "wearing glasses")], tmp_path_factory.mktemp("mp-set"), steps=2)
    return PortraitDataset(folder, 64)


def _run_steps(task, steps=2):
    loop = TrainingLoop(task, report=lambda m: None)
    before = {i: p.detach().clone() for i, p in enumerate(loop.params)}
    values = [loop.train_step() for _ in range(steps)]
    return loop, before, values


def test_bf16_stage2_on_cpu_keeps_trainable_weights_fp32_and_trains(tiny_pipe, tiny_clip, portrait_set, tmp_path):
    config = Stage2Config(output_dir=str(tmp_path), train_batch_size=1, max_steps=2, checkpoint_every=0,
                          learning_rate=1e-3, mixed_precision="bf16", device="cpu", init_from="original")
    task = DualPathTask(config, pipe=fresh_copy(tiny_pipe), dataset=portrait_set,
                        clip=fresh_copy(tiny_clip), report=lambda m: None)
    loop, before, values = _run_steps(task)
    assert loop.accelerator.mixed_precision == "bf16"
    assert task.vae.dtype == torch.bfloat16 and task.reference_unet.dtype == torch.bfloat16  # frozen: half
    assert all(p.dtype == torch.float32 for p in loop.params)  # trainable: fp32 master weights
    assert all(torch.isfinite(torch.tensor(v[k])) for v in values for k in ("diff", "attn", "unet", "re"))
    assert any(not torch.equal(before[i], p) for i, p in enumerate(loop.params))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 autocast needs a CUDA device")
def test_fp16_stage1_on_gpu_scales_gradients_of_fp32_weights(tiny_pipe, portrait_set, tmp_path):
    config = Stage1Config(output_dir=str(tmp_path), train_batch_size=1, max_steps=2, checkpoint_every=0,
                          learning_rate=1e-3, mixed_precision="fp16")
    task = DiffusionTask(config, pipe=fresh_copy(tiny_pipe), dataset=portrait_set, report=lambda m: None)
    loop, before, values = _run_steps(task)
    assert loop.accelerator.scaler is not None
    assert all(p.dtype == torch.float32 for p in loop.params)
    assert all(torch.isfinite(torch.tensor(v["diff"])) for v in values)
    assert any(not torch.equal(before[i].to(p.device), p) for i, p in enumerate(loop.params))
