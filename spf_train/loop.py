"""The training loop every ``spf-train`` command shares, on accelerate.

A command supplies a :class:`TrainingTask` (what trains, how a micro-batch becomes named loss
terms, how the result is saved); :class:`TrainingLoop` does the rest: mixed precision and
gradient accumulation (``Accelerator``), AdamW and the LR schedule, deterministic batches,
per-term logging, NaN/inf checks, checkpoints every N steps and resume.

Loss hook (how another method adds its own losses, e.g. TokenCompose's grounding losses):
    ``hook(context: StepContext) -> dict[str, LossTerm]``
is called after the task's own losses for every micro-batch; ``context`` carries the batch,
the noised latents, timesteps, text features, the trainable UNet's prediction and, when the
task captured them, the recorded attention (``context.record``, see ``spf_train.capture``;
a hook that needs attention maps sets ``task.capture_attention = True`` before the run, so the
task installs capture processors on the trainable UNet). The returned terms are added to the
total with their weights and logged and checked like the task's own.

Checkpoints: ``OUT/checkpoints/step-N/`` is ``accelerator.save_state`` (model, optimizer,
LR scheduler, every RNG, and the loop's own step and noise generator) plus the resolved
config. A checkpoint is written to a temporary folder and renamed, so a killed run leaves
only complete checkpoints; ``resume="latest"`` continues from the newest one.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch

from spf_bench.core.agreement import check_agreement, fingerprint, tensors_fingerprint
from spf_bench.core.errors import SpfError
from spf_train.config import TrainConfig, config_to_dict, save_config
from spf_train.accelerator import make_accelerator
from spf_train.data import batch_indices, collate

CHECKPOINT_DIR = "checkpoints"
LOG_FILE = "train_log.jsonl"
_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass
class LossTerm:
    """One named term of the total loss: total = sum(weight · value)."""

    value: torch.Tensor
    weight: float = 1.0


@dataclass
class StepContext:
    """What a loss hook may read about the current micro-batch."""

    batch: dict
    step: int
    latents: torch.Tensor | None = None
    noise: torch.Tensor | None = None
    noisy_latents: torch.Tensor | None = None
    timesteps: torch.Tensor | None = None
    encoder_hidden_states: torch.Tensor | None = None
    noise_pred: torch.Tensor | None = None
    target: torch.Tensor | None = None
    record: Any = None  # spf_train.capture.AttentionRecord when attention was captured
    extras: dict = field(default_factory=dict)


LossHook = Callable[[StepContext], dict[str, LossTerm]]


class TrainingTask(Protocol):
    """What a command plugs into the loop."""

    config: TrainConfig
    dataset: torch.utils.data.Dataset

    def trainable_module(self) -> torch.nn.Module: ...  # the module accelerate prepares

    def trainable_parameters(self) -> list[torch.nn.Parameter]: ...

    def setup(self, accelerator, model: torch.nn.Module) -> None: ...  # device, dtypes, caches

    def compute_losses(self, batch: dict, generator: torch.Generator, step: int) -> tuple[dict[str, LossTerm], StepContext]: ...

    def after_optimizer_step(self, step: int) -> None: ...  # after each optimizer step, before grads are cleared

    def save_output(self, folder: Path, model: torch.nn.Module) -> None: ...


class LoopState:
    """The loop's own resumable state, checkpointed through accelerate's custom objects.

    Each process draws its own noise (its generator is seeded with seed + rank), but
    accelerate writes a custom object from the main process only; so the state saved holds
    every process's generator, gathered over the process group, and each process takes its
    own back on resume. A resumed multi-process run thus draws exactly the noise the
    uninterrupted one would have.
    """

    def __init__(self, seed: int, rank: int = 0, world: int = 1):
        self.step = 0
        self.rank, self.world = rank, world
        self.generator = torch.Generator("cpu").manual_seed(seed + rank)

    def state_dict(self) -> dict:
        mine = self.generator.get_state()
        if self.world > 1:
            import torch.distributed as dist

            states = [torch.empty_like(mine) for _ in range(self.world)]
            dist.all_gather(states, mine)
        else:
            states = [mine]
        return {"step": self.step, "generator": mine, "generators": states}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        states = state.get("generators", [state["generator"]])
        if len(states) != self.world:
            raise SpfError(f"This checkpoint was written by {len(states)} training processes and cannot resume "
                           f"with {self.world}: the data order and noise are tied to the number of processes.")
        self.generator.set_state(states[self.rank])


def checkpoint_steps(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    root = Path(output_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return sorted(found)


def total_steps(config: TrainConfig, dataset_size: int, num_processes: int = 1) -> int:
    if config.max_steps > 0:
        return config.max_steps
    per_step = config.train_batch_size * config.gradient_accumulation_steps * num_processes
    return max(1, math.ceil(config.num_epochs * dataset_size / per_step))


class TrainingLoop:
    """Runs a task to ``total_steps`` optimizer steps, checkpointing and resuming."""

    def __init__(self, task: TrainingTask, hooks: tuple[LossHook, ...] = (), report: Callable[[str], None] = print):
        self.task = task
        self.config = task.config
        self.hooks = tuple(hooks)
        self.report = report
        self.output_dir = Path(self.config.output_dir)
        self.accelerator = make_accelerator(self.config)
        self.state = LoopState(self.config.seed, self.accelerator.process_index, self.accelerator.num_processes)
        self.total_steps = total_steps(self.config, len(task.dataset), self.accelerator.num_processes)
        self._build()

    def _build(self) -> None:
        from diffusers.optimization import get_scheduler

        cfg = self.config
        model = self.task.trainable_module()
        params = self.task.trainable_parameters()
        if not params:
            raise SpfError("The chosen trainable part has no parameters.")
        # Before accelerate wraps the model: DDP would copy rank 0's weights to the others and
        # hide a launch whose processes started from different checkpoints or configs.
        check_agreement({"options": config_to_dict(cfg),
                         "training set": fingerprint([len(self.task.dataset)] + [(Path(r.image_path).name, r.full_caption)
                                                                         for r in getattr(self.task.dataset, "rows", [])]),
                         "starting weights": tensors_fingerprint(params)}, "this training launch")
        # Trainable weights stay fp32 whatever the mixed precision: autocast computes in half
        # precision, while the optimizer and the gradient scaler see fp32 master weights.
        for p in params:
            p.data = p.data.float()
        optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2),
                                      weight_decay=cfg.adam_weight_decay, eps=cfg.adam_epsilon)
        scheduler = get_scheduler(cfg.lr_scheduler, optimizer=optimizer, num_warmup_steps=cfg.lr_warmup_steps,
                                  num_training_steps=self.total_steps)
        self.model, self.optimizer, self.lr_scheduler = self.accelerator.prepare(model, optimizer, scheduler)
        self.params = params
        self.accelerator.register_for_checkpointing(self.state)
        # a task's own resumable state (e.g. AdaLoRA's rank allocator) rides in the same checkpoint
        for extra in getattr(self.task, "checkpoint_objects", lambda: [])():
            self.accelerator.register_for_checkpointing(extra)
        self.task.setup(self.accelerator, self.model)

    # ------------------------------------------------------------------ resume and checkpoints

    def resume(self) -> Path | None:
        """Load the checkpoint named by ``config.resume``; returns it, or None for a fresh start."""
        choice = self.config.resume
        if choice == "none":
            return None
        if choice == "latest":
            found = checkpoint_steps(self.output_dir)
            if not found:
                return None
            folder = found[-1][1]
        else:
            folder = Path(choice)
            if not folder.is_dir():
                raise SpfError(f"The checkpoint to resume from, {folder}, does not exist.")
        self.accelerator.load_state(str(folder))
        self._drop_log_after(self.state.step)
        self.report(f"Resumed from {folder} at step {self.state.step}.")
        return folder

    def _drop_log_after(self, step: int) -> None:
        """Forget logged steps the killed run made after its last checkpoint; they are redone."""
        log = self.output_dir / LOG_FILE
        if self.accelerator.is_main_process and log.is_file():
            kept = [line for line in log.read_text().splitlines() if line and json.loads(line)["step"] <= step]
            log.write_text("".join(line + "\n" for line in kept))

    def save_checkpoint(self) -> Path:
        """accelerate writes the weights and optimizer from the main process and each
        process's RNG state itself, all into a temporary folder that the main process renames
        once every process has finished writing."""
        acc = self.accelerator
        root = self.output_dir / CHECKPOINT_DIR
        final = root / f"step-{self.state.step}"
        tmp = root / f".tmp-step-{self.state.step}"
        if acc.is_main_process and tmp.exists():
            shutil.rmtree(tmp)
        acc.wait_for_everyone()  # nobody writes into the folder before a stale one is gone
        acc.save_state(str(tmp))
        acc.wait_for_everyone()  # every process's files are in before the rename
        if acc.is_main_process:
            save_config(self.config, tmp)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            self._prune_checkpoints()
        acc.wait_for_everyone()
        return final

    def _prune_checkpoints(self) -> None:
        limit = self.config.checkpoints_total_limit
        if limit > 0:
            for _, folder in checkpoint_steps(self.output_dir)[:-limit]:
                shutil.rmtree(folder, ignore_errors=True)

    # ------------------------------------------------------------------ one step

    def _micro_batch(self, micro: int) -> dict:
        acc = self.accelerator
        index = micro * acc.num_processes + acc.process_index
        ids = batch_indices(len(self.task.dataset), self.config.train_batch_size, index, self.config.seed)
        return collate([self.task.dataset[i] for i in ids])

    def _check_finite(self, terms: dict[str, LossTerm]) -> None:
        for name, term in terms.items():
            value = float(term.value.detach().float())
            if not math.isfinite(value):
                last = checkpoint_steps(self.output_dir)
                kept = f"the last good checkpoint is {last[-1][1]}" if last else "no checkpoint was written yet"
                raise SpfError(f"Training stopped at step {self.state.step + 1}: the loss term '{name}' is {value}; {kept}.")

    def train_step(self) -> dict[str, float]:
        """One optimizer step (``gradient_accumulation_steps`` micro-batches); returns logged values."""
        acc, cfg = self.accelerator, self.config
        logged: dict[str, float] = {}
        for k in range(cfg.gradient_accumulation_steps):
            batch = self._micro_batch(self.state.step * cfg.gradient_accumulation_steps + k)
            with acc.accumulate(self.model):
                with acc.autocast():
                    terms, context = self.task.compute_losses(batch, self.state.generator, self.state.step)
                    for hook in self.hooks:
                        terms.update(hook(context))
                self._check_finite(terms)
                total = sum(term.weight * term.value.float() for term in terms.values() if term.weight != 0)
                acc.backward(total)
                if acc.sync_gradients and cfg.max_grad_norm > 0:
                    acc.clip_grad_norm_(self.params, cfg.max_grad_norm)
                self.optimizer.step()
                if acc.sync_gradients:
                    # gradients are still there (AdaLoRA's sensitivity scores read them)
                    self.task.after_optimizer_step(self.state.step + 1)
                self.lr_scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
            for name, term in terms.items():
                logged[name] = logged.get(name, 0.0) + float(term.value.detach()) / cfg.gradient_accumulation_steps
            logged["loss"] = logged.get("loss", 0.0) + float(total.detach()) / cfg.gradient_accumulation_steps
        self.state.step += 1
        logged["lr"] = self.lr_scheduler.get_last_lr()[0]
        return logged

    def _log(self, values: dict[str, float]) -> None:
        if self.accelerator.is_main_process and self.state.step % max(1, self.config.log_every) == 0:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            with open(self.output_dir / LOG_FILE, "a") as handle:
                handle.write(json.dumps({"step": self.state.step, **values}) + "\n")

    # ------------------------------------------------------------------ the run

    def run(self, stop_at: int | None = None) -> Path:
        """Train to ``total_steps`` (or only to ``stop_at``, as if killed there) and save the output."""
        from spf_bench.core.progress import progress_bar

        if self.accelerator.is_main_process:
            save_config(self.config, self.output_dir)
        end = self.total_steps if stop_at is None else min(stop_at, self.total_steps)
        bar = progress_bar(total=self.total_steps, initial=self.state.step, desc="train",
                           enabled=self.accelerator.is_local_main_process)
        self.model.train()
        while self.state.step < end:
            values = self.train_step()
            self._log(values)
            # refresh=False: the update draws the new values within the bar's own interval, so
            # a log file gets a line every interval rather than one per step
            bar.set_postfix({k: f"{v:.4g}" for k, v in values.items() if k != "lr"}, refresh=False)
            bar.update(1)
            if self.config.checkpoint_every > 0 and self.state.step % self.config.checkpoint_every == 0:
                self.save_checkpoint()
        bar.close()
        if stop_at is not None and end < self.total_steps:
            return self.output_dir
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            self.task.save_output(self.output_dir, self.accelerator.unwrap_model(self.model))
            save_config(self.config, self.output_dir)
        return self.output_dir


def train(task: TrainingTask, hooks: tuple[LossHook, ...] = (), report: Callable[[str], None] = print) -> Path:
    """Build the loop for ``task``, resume if asked, run to the end; returns the output folder."""
    loop = TrainingLoop(task, hooks=hooks, report=report)
    loop.resume()
    return loop.run()
