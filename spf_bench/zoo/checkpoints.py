"""Reading weight files safely, with one clear sentence when a file is not what it claims.

Only safetensors and ``torch.load(weights_only=True)`` are used: a pickle can run code, so a
third-party pickled checkpoint that needs full unpickling is converted once by an explicit
command (see ``spf-bench convert-weights``), never loaded silently.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Mapping

import torch

from spf_bench.core.errors import WeightsCorruptError


def read_state_dict(path: Path, key: str | None = None) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``.safetensors`` or a torch (zip or legacy) file.

    ``key`` picks a nested state dict (``{"state_dict": {...}}``, ``{"model": {...}}``).
    """
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=_is_zip(path))
    except pickle.UnpicklingError as exc:
        raise WeightsCorruptError(
            f"{path} holds pickled Python objects that a safe load refuses ({str(exc).splitlines()[0][:120]}); "
            "convert it once with 'spf-bench convert-weights --trust-pickle' if you trust its source.") from None
    except Exception as exc:  # torch / safetensors raise many types for a truncated file
        raise WeightsCorruptError(f"{path} is truncated or not a valid checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else 'no detail'}).") from None
    if key is not None:
        if not isinstance(state, Mapping) or key not in state:
            raise WeightsCorruptError(f"{path} has no '{key}' entry, so it is not the expected checkpoint.")
        state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsCorruptError(f"{path} does not hold a state dict of tensors.")
    return dict(state)


def load_into(module: torch.nn.Module, state: Mapping[str, torch.Tensor], path: Path, strict: bool = True,
              adopt: bool = False) -> None:
    """``load_state_dict`` that reports a wrong checkpoint as such, not as a stack trace.

    ``adopt``: the module takes the tensors read from the file as they are (dtype included)
    instead of copying them into its own. :func:`read_state_dict` maps the file into memory,
    so a copy would touch every page of it while the module's own tensors are still alive:
    two copies of the weights at the peak of the load (8 GB for MPS's CLIP-H), where adopting
    keeps one, and the file's pages are read only when the network first uses them. The
    caller converts afterwards (``.to(device, dtype)``), as every zoo loader does.
    """
    try:
        module.load_state_dict(state, strict=strict, assign=adopt)
    except RuntimeError as exc:
        first = str(exc).splitlines()
        detail = " ".join(line.strip() for line in first[:3])[:240]
        raise WeightsCorruptError(f"{path} does not fit the {type(module).__name__} architecture ({detail}).") from None


def _is_zip(path: Path) -> bool:
    return zipfile.is_zipfile(path)


def count_parameters_in_file(path: Path) -> int:
    """Number of tensor elements stored in a weights file, read without building the model."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        total = 0
        with safe_open(str(path), framework="pt") as handle:
            for name in handle.keys():
                total += handle.get_slice(name).get_shape().numel() if hasattr(handle.get_slice(name).get_shape(), "numel") else _prod(handle.get_slice(name).get_shape())
        return total
    if path.suffix == ".onnx":
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        return sum(_prod(t.dims) for t in model.graph.initializer)
    state = torch.load(path, map_location="meta" if _is_zip(path) else "cpu", weights_only=True)
    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    return sum(v.numel() for v in state.values() if isinstance(v, torch.Tensor))


def _prod(dims) -> int:
    out = 1
    for d in dims:
        out *= int(d)
    return out
