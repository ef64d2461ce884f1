"""Converting MPS's released checkpoint, a pickled model object, into safetensors.

The release (``MPS_overall_checkpoint.pth``) is a whole pickled model, which only full
unpickling can read; it is converted once, on the user's word that they trust it, and never
loaded at run time.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from spf_bench.core.atomic import atomic_path
from spf_bench.core.errors import SpfError, WeightsCorruptError

WEIGHTS = "mps_overall.safetensors"
RELEASE_FILE = "MPS_overall_checkpoint.pth"
RELEASE_URL = "https://drive.google.com/file/d/17qrK_aJkVNM75ZEvMEePpLj6L867MLkN/view"


class _PickledObject:
    """Inert stand-in for every class named in the pickle.

    Only tensors are wanted from the release, so no class of its training code (nor of
    transformers, deepspeed...) is imported or run: each object just keeps its pickled state.
    """

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots) form
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)


# The only real callables the unpickler hands out: those that rebuild tensors and the plain
# containers they arrive in.
_REAL_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor_v3"),
    ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._tensor", "_rebuild_from_type_v2"), ("torch.nn.parameter", "Parameter"),
    ("torch", "Tensor"), ("torch", "Size"), ("collections", "OrderedDict"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "object"), ("copyreg", "_reconstructor"),
    # The same under the Python 2 module names that pickle protocol 2 writes.
    ("__builtin__", "set"), ("__builtin__", "frozenset"), ("__builtin__", "object"), ("copy_reg", "_reconstructor"),
}


class _InertUnpickler(pickle.Unpickler):
    _stand_ins: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str):
        if (module, name) in _REAL_GLOBALS:
            return super().find_class(module, name)
        key = (module, name)
        if key not in self._stand_ins:
            self._stand_ins[key] = type(name, (_PickledObject,), {"__module__": module, "__qualname__": name})
        return self._stand_ins[key]


class _InertPickleModule:
    """What ``torch.load(pickle_module=...)`` needs: an ``Unpickler`` class and ``load``."""

    Unpickler = _InertUnpickler
    __name__ = "spf_inert_pickle"

    @staticmethod
    def load(file, **kwargs):
        return _InertUnpickler(file, **kwargs).load()


def _module_tensors(obj: Any, prefix: str = "", seen: set | None = None) -> dict[str, torch.Tensor]:
    """The state dict of a pickled ``nn.Module`` tree, read from its attributes alone."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return {}
    seen.add(id(obj))
    attrs = getattr(obj, "__dict__", {})
    out: dict[str, torch.Tensor] = {}
    for name, value in (attrs.get("_parameters") or {}).items():
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
    transient = attrs.get("_non_persistent_buffers_set")
    transient = transient if isinstance(transient, (set, frozenset)) else set()
    for name, value in (attrs.get("_buffers") or {}).items():
        if isinstance(value, torch.Tensor) and name not in transient:
            out[prefix + name] = value
    for name, child in (attrs.get("_modules") or {}).items():
        if child is not None:
            out.update(_module_tensors(child, f"{prefix}{name}.", seen))
    return out


# Buffers that the transformers release MPS was trained with stored in checkpoints and that
# current transformers recomputes instead.
_OBSOLETE_KEYS = ("model.text_model.embeddings.position_ids", "model.vision_model.embeddings.position_ids")


def _released_state(src: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(src, map_location="cpu", weights_only=False, pickle_module=_InertPickleModule)
    except Exception as exc:  # a truncated zip or pickle raises many types
        raise WeightsCorruptError(f"{src} is truncated or not a pickled PyTorch model ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else 'no detail'}).") from None
    if isinstance(obj, dict):  # a plain state dict (e.g. saved from a converted model) is taken as is
        state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    else:
        state = _module_tensors(obj)
    for key in _OBSOLETE_KEYS:
        state.pop(key, None)
    if not any(k.startswith("model.text_model.") for k in state) or not any(k.startswith("cross_model.layers.") for k in state):
        raise WeightsCorruptError(f"{src} holds no MPS model (no 'model.text_model.*' and 'cross_model.layers.*' tensors); is it {RELEASE_FILE}?")
    return state


def convert_mps_checkpoint(src: str | Path, dst: str | Path, trust_pickle: bool = False) -> Path:
    """Convert the released ``MPS_overall_checkpoint.pth`` into ``mps_overall.safetensors``.

    ``dst`` is the output file, or a folder to write ``mps_overall.safetensors`` into. The
    release is a pickle, and unpickling may run code, so nothing is read unless
    ``trust_pickle`` says the user trusts the file. Even then every class it names is
    replaced by an inert stand-in, and only its tensors are kept. Returns the written path.
    """
    src, dst = Path(src), Path(dst)
    if not trust_pickle:
        raise SpfError(f"{src} is a pickled Python object, which can run code when loaded; convert it only if you trust its source, by passing --trust-pickle.")
    if not src.is_file():
        raise SpfError(f"{src} does not exist; download {RELEASE_FILE} from {RELEASE_URL} first.")
    if dst.is_dir():
        dst = dst / WEIGHTS
    state = _released_state(src)
    _save_atomically({k: v.detach().clone().contiguous() for k, v in sorted(state.items())}, dst)
    return dst


def _save_atomically(state: dict[str, torch.Tensor], dst: Path) -> None:
    from safetensors.torch import save_file

    with atomic_path(dst, durable=True) as tmp:
        save_file(state, tmp)
