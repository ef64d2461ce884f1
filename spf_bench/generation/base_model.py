"""The base model every triple set and method starts from: SD1.5 from a weight source.

Its identity (recorded in manifests, part of every method's fingerprint) is the hash of its
files for the ``tiny`` and ``pretrained`` sources, and the seeded recipe for ``random``,
whose weights are a pure function of the code that initialises them.
"""

from __future__ import annotations

import torch

from spf_bench import zoo
from spf_bench.core.errors import SpfError
from spf_bench.core.fingerprint import hash_json, hash_path_cached

BASE_NETWORK = "sd15"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def parse_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise SpfError(f"Unknown dtype '{name}'; choose one of: {', '.join(DTYPES)}.")
    return DTYPES[name]


def dtype_name(dtype: torch.dtype) -> str:
    return next(k for k, v in DTYPES.items() if v == dtype)


def parse_device(name: str | None) -> torch.device:
    """The device to run on; None picks the first GPU when there is one, else the CPU."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SpfError(f"'{name}' is not a device name (use cpu, cuda or cuda:N).") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpfError(f"The device '{name}' was asked for but torch sees no CUDA GPU here.")
    return device


def load_base(weights: str, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    pipe = zoo.load(BASE_NETWORK, source=weights, device=device, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def base_sha256(weights: str) -> str:
    folder = zoo.registry.folder_for(BASE_NETWORK, weights)
    if folder is None:
        from spf_bench.zoo.networks import sd15

        return hash_json({"network": BASE_NETWORK, "source": weights, "seed": sd15.TINY_SEED})
    return hash_path_cached(folder)
