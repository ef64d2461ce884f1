"""One process of a 2-process CPU training launch (gloo), driven by test_train_distributed.py.

Run as ``accelerate launch --cpu --num_processes 2 tests/dist_train_worker.py DATA OUT``. Each
process writes what it observed to ``OUT/rank-<r>.json``; the test compares them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from spf_bench import zoo
from spf_bench.core.agreement import tensors_fingerprint
from spf_bench.core.errors import SpfError
from spf_train.baselines import LoraTask
from spf_train.config import LoraTrainConfig, Stage1Config, Stage2Config
from spf_train.data import PortraitDataset
from spf_train.loop import TrainingLoop
from spf_train.stage1 import Stage1Task
from spf_train.stage2 import DualPathTask

torch.set_num_threads(1)
QUIET = dict(report=lambda m: None)


def stage1_loop(data, out, seed=3, hooks=()):
    config = Stage1Config(output_dir=str(out), train_batch_size=1, max_steps=3, checkpoint_every=1, learning_rate=1e-3,
                          max_grad_norm=0.0, lr_scheduler="linear", lr_warmup_steps=0, seed=seed, device="cpu")
    return TrainingLoop(Stage1Task(config, pipe=zoo.load("sd15", source="tiny"), dataset=data), hooks=hooks, **QUIET)


def trainable_hash(loop) -> str:
    return tensors_fingerprint(loop.params)


def global_gradient_check(loop) -> dict:
    """The gradient of this process's own micro-batch, the mean of every process's, and the
    gradient the synchronised step applied (AdamW's first moment after one step is
    (1 - beta1) * g, and gradient clipping is off)."""
    acc, task = loop.accelerator, loop.task
    generator = torch.Generator().set_state(loop.state.generator.get_state())
    batch = loop._micro_batch(0)
    with acc.no_sync(loop.model):
        terms, _ = task.compute_losses(batch, generator, 0)
        sum(t.weight * t.value for t in terms.values()).backward()
    local = [p.grad.detach().clone() for p in loop.params]
    loop.optimizer.zero_grad(set_to_none=True)
    mean = [g.clone() for g in local]
    for g in mean:
        dist.all_reduce(g)
        g /= acc.num_processes
    loop.train_step()
    beta1 = loop.config.adam_beta1
    state = loop.optimizer.state_dict()["state"]
    applied = [state[i]["exp_avg"] / (1 - beta1) for i in range(len(loop.params))]
    scale = max(float(g.abs().max()) for g in mean)
    return {
        "applied_vs_mean": max(float((a - m).abs().max()) for a, m in zip(applied, mean)) / scale,
        "local_vs_mean": max(float((l - m).abs().max()) for l, m in zip(local, mean)) / scale,
    }


def main(data_dir: str, out_dir: str) -> None:
    out = Path(out_dir)
    data = PortraitDataset(data_dir, 64)
    seen: list[list[int]] = []
    record = lambda ctx: seen.append(ctx.batch["index"].tolist()) or {}  # noqa: E731
    result: dict = {}

    # stage 1: one synchronised step, then a kill after step 2 and a resume, against an uninterrupted run
    loop = stage1_loop(data, out / "killed", hooks=(record,))
    result["rank"], result["world"] = loop.accelerator.process_index, loop.accelerator.num_processes
    result["total_steps_for_one_epoch"] = __import__("spf_train.loop", fromlist=["total_steps"]).total_steps(
        Stage1Config(train_batch_size=1, num_epochs=1, max_steps=0), len(data), loop.accelerator.num_processes)
    result["gradient"] = global_gradient_check(loop)
    result["indices_step1"] = seen[-1]
    result["stage1_step1"] = trainable_hash(loop)
    result["stage1_step1_moved"] = trainable_hash(loop) != tensors_fingerprint(list(zoo.load("sd15", source="tiny").unet.parameters()))
    loop.run(stop_at=2)
    del loop
    resumed = stage1_loop(data, out / "killed")
    result["resumed_from"] = resumed.resume().name
    resumed.run()
    result["stage1_resumed"] = trainable_hash(resumed)
    full = stage1_loop(data, out / "full")
    full.run()
    result["stage1_full"] = trainable_hash(full)

    # stage 2 and LoRA: one synchronised step each
    s2 = Stage2Config(output_dir=str(out / "stage2"), init_from="original", train_batch_size=1, max_steps=1, checkpoint_every=1,
                      learning_rate=1e-3, device="cpu")
    task = DualPathTask(s2, pipe=zoo.load("sd15", source="tiny"), dataset=data, clip=zoo.load("clip", source="tiny"), **QUIET)
    loop = TrainingLoop(task, **QUIET)
    loop.run()
    result["stage2_step1"] = trainable_hash(loop)
    lora = LoraTrainConfig(output_dir=str(out / "lora"), train_batch_size=1, max_steps=1, checkpoint_every=1,
                           learning_rate=1e-2, device="cpu")
    loop = TrainingLoop(LoraTask(lora, pipe=zoo.load("sd15", source="tiny"), dataset=data, **QUIET), **QUIET)
    loop.run()
    result["lora_step1"] = trainable_hash(loop)

    # a launch whose processes disagree (here: on the seed) stops on every process
    try:
        stage1_loop(data, out / "disagree", seed=3 + result["rank"])
        result["disagreement"] = None
    except SpfError as error:
        result["disagreement"] = str(error)
    (out / f"rank-{result['rank']}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
