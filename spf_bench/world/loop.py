"""A resumable training loop shared by the world's models.

Each step's batch and noise are drawn from generators seeded by the step number, so a run
that is interrupted and resumed from its last checkpoint gives the same weights as one that
was never interrupted. Checkpoints are written to a temporary file and renamed.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import torch

from spf_bench.core.atomic import atomic_path
from spf_bench.core.errors import SpfError
from spf_bench.core.progress import progress_bar


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def cosine_lr(base: float, step: int, total: int, warmup: int = 50) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train_steps(
    name: str,
    modules: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    step_fn: Callable[[int], torch.Tensor],
    total: int,
    checkpoint: Path,
    base_lr: float,
    every: int = 100,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Run steps until ``total``, resuming from ``checkpoint``; return timing figures.

    ``step_fn(step)`` computes the loss of one step (and calls nothing on the optimizer).
    """
    start, elapsed, history = 0, 0.0, []
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        for key, module in modules.items():
            module.load_state_dict(state["modules"][key])
        optimizer.load_state_dict(state["optimizer"])
        start, elapsed = int(state["step"]), float(state["elapsed"])
        history = list(state.get("history", []))
        if state.get("total", total) != total:
            # Resumed with another step count: the learning-rate schedule changed here, so a
            # straight run of ``total`` steps would not give the same weights; say so.
            history.append({"until_step": start, "total": int(state["total"])})
    began = time.time() - elapsed
    bar = progress_bar(range(start, total), desc=name, initial=start, total=total, mininterval=10)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(base_lr, step, total)
        loss = step_fn(step)
        if not torch.isfinite(loss):
            raise SpfError(f"The {name} training's loss became {loss.item()} at step {step}; lower its learning rate in the recipe.")
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 1.0)  # one bad batch must not undo the run
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if (step + 1) % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        if (step + 1) % every == 0 or step + 1 == total:
            _save(checkpoint, modules, optimizer, step + 1, time.time() - began, total, history)
            if log:
                log(f"{name} step {step + 1}/{total} loss {loss.item():.4f} elapsed {time.time() - began:.0f}s")
    figures = {"steps": total, "seconds": round(time.time() - began, 1)}
    if history:
        figures["schedule_history"] = history
    return figures


def _save(path: Path, modules, optimizer, step: int, elapsed: float, total: int, history: list) -> None:
    state = {"modules": {k: m.state_dict() for k, m in modules.items()}, "optimizer": optimizer.state_dict(),
             "step": step, "elapsed": elapsed, "total": total, "history": history}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
