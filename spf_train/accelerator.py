"""The accelerate set-up of a training run: one Accelerator per run, on the device asked for,
with the dtype its frozen networks are cast to."""

from __future__ import annotations

import torch

from spf_bench.core.errors import SpfError
from spf_train.config import TrainConfig


def make_accelerator(config: TrainConfig):
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    if config.mixed_precision not in ("no", "fp16", "bf16"):
        raise SpfError(f"mixed_precision must be no, fp16 or bf16, not '{config.mixed_precision}'.")
    _allow_new_single_process_state()
    _select_gpu(config.device)
    return Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        cpu=config.device == "cpu",
        project_config=ProjectConfiguration(project_dir=config.output_dir),
    )


def _select_gpu(device: str) -> None:
    """Make ``cuda:N`` the current GPU: a single-process Accelerator trains on the current one."""
    if not device or device == "cpu":
        return
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise SpfError(f"device must be empty, cpu, cuda or cuda:N, not '{device}'.") from None
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise SpfError(f"The device '{device}' was asked for but torch sees no CUDA GPU here.")
        if chosen.index is not None:
            torch.cuda.set_device(chosen.index)


def _allow_new_single_process_state() -> None:
    """accelerate keeps one global state per process and refuses a second Accelerator with
    another precision; several runs in one single-process Python session (tests, notebooks)
    each need their own, so the global state is cleared there. Never under ``accelerate
    launch`` with several processes, where that state is the process group's."""
    from accelerate.state import AcceleratorState, GradientState, PartialState

    if AcceleratorState._shared_state and PartialState().num_processes == 1:
        AcceleratorState._reset_state()
        GradientState._reset_state()


def weight_dtype(accelerator) -> torch.dtype:
    """The dtype frozen networks are cast to (trainable weights always stay fp32)."""
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)
