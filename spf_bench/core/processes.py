"""The processes of an ``accelerate launch``: which one this is, and how they meet.

A plain command is one process and gets ``None`` everywhere here, so every caller keeps a
single code path. Under a launch, accelerate's :class:`~accelerate.PartialState` joins the
process group: NCCL between GPUs, gloo between CPU processes. Without ``cpu=True`` on a
machine without GPUs, ``PartialState`` does not join any group and each launched process
believes it is the only one (measured: every process rendered and scored everything and wrote
the same files), so the device decides.
"""

from __future__ import annotations

import os

import torch


def distributed_state(device: torch.device | str | None = None):
    """accelerate's process state under a multi-process launch, else None (plain single process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import PartialState

    wants_cpu = device is not None and torch.device(device).type == "cpu"
    return PartialState(cpu=wants_cpu or not torch.cuda.is_available())


def process_device(state, device: torch.device) -> torch.device:
    """The device this process works on: its own GPU under a launch, else the one asked for."""
    if state is None:
        return device
    # accelerate names a CPU process's device "cpu:0" or "cpu"; one name keeps records alike
    return torch.device("cpu") if state.device.type == "cpu" else state.device


def broadcast_from_main(state, value):
    """``value`` as the main process holds it, on every process (pickled over the process
    group between the launch's own processes, never read from a file)."""
    if state is None or state.num_processes <= 1:
        return value
    from accelerate.utils import broadcast_object_list

    box = [value if state.is_main_process else None]
    broadcast_object_list(box, from_process=0)
    return box[0]


def stop_together(state, error: Exception | None) -> None:
    """Raise on every process when any process met ``error``, so none waits at a barrier for a
    partner that has already quit; the sentence names the process that failed."""
    import torch.distributed as dist

    from spf_bench.core.errors import SpfError

    if state is None or state.num_processes <= 1 or not dist.is_initialized():
        if error is not None:
            raise error
        return

    gathered: list = [None] * state.num_processes
    dist.all_gather_object(gathered, None if error is None else str(error))
    failed = [(rank, message) for rank, message in enumerate(gathered) if message is not None]
    if failed:
        rank, message = failed[0]
        if error is not None and rank == state.process_index:
            raise error
        raise SpfError(f"Process {rank} of this launch stopped: {message}")
