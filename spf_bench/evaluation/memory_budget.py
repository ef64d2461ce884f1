"""How much memory scoring needs, from parameter counts, before anything large is loaded.

A metric network's working set while it encodes a batch is its weights plus the activations
of the batch. The weights are counted exactly: the zoo builds each network on the ``meta``
device (shapes without storage, no file read, a few seconds), so the count is that of the
architecture the run will load. Activations are not knowable without running; the table
below holds an upper estimate per image at the real architectures' input sizes (fp32), scaled
down for the small test networks in proportion to their weights. With a budget
(``--max-memory GB``) each network gets the largest batch that fits, and a network that does
not fit even one image at a time stops the run with one sentence before any load.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from spf_bench.core.errors import SpfError

GIB = 1024 ** 3
MIB = 1024 ** 2

# Activation memory per image of the real-size architectures, in fp32, rounded up: the
# networks are evaluated under inference mode, so only the largest layer's input, output and
# (for transformers) attention matrix are alive at once. SAM ViT-H's global-attention blocks
# over 64 x 64 tokens dominate its figure: measured 3.4 GiB above its weights at 1024 px on
# the CPU (benchmarks/metrics_memory.py --single sam); it encodes one image at a time
# whatever the batch.
ACTIVATION_PER_IMAGE = {
    "inception": 96 * MIB, "lpips": 160 * MIB, "face": 128 * MIB, "clip": 96 * MIB,
    "sam": 3584 * MIB, "hps": 160 * MIB, "mps": 192 * MIB, "oracle": 1 * MIB,
}
# Networks that see one image per forward pass whatever the batch size.
ONE_AT_A_TIME = ("face", "sam")
# Parameter counts of the real architectures, for scaling the activation table to smaller
# stand-ins (the tiny and synth networks); measured with :func:`weight_bytes` on ``random``.
REAL_PARAMETERS = {
    "inception": 23_850_960, "lpips": 2_470_848, "face": 43_600_000, "clip": 427_616_513,
    "sam": 641_090_608, "hps": 986_109_441, "mps": 1_104_606_721, "oracle": 100_000,
}


def _modules_of(network) -> list[torch.nn.Module]:
    # Zoo networks are modules or small bundles (a dataclass holding the module and its
    # preprocessing); one level of attributes finds every module in them.
    if isinstance(network, torch.nn.Module):
        return [network]
    found = []
    for value in vars(network).values() if hasattr(network, "__dict__") else ():
        if isinstance(value, torch.nn.Module):
            found.append(value)
    return found


def tensor_bytes(network) -> tuple[int, int]:
    """(parameter count, bytes of parameters and buffers) of a loaded or meta network."""
    seen: set[int] = set()
    count = size = 0
    for module in _modules_of(network):
        for tensor in (*module.parameters(), *module.buffers()):
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            size += tensor.numel() * tensor.element_size()
            if isinstance(tensor, torch.nn.Parameter):
                count += tensor.numel()
    return count, size


@functools.lru_cache(maxsize=None)
def weight_bytes(name: str, source: str) -> tuple[int, int]:
    """(parameters, bytes) of zoo network ``name`` on ``source``, counted on the meta device."""
    if name == "oracle":
        return REAL_PARAMETERS["oracle"], REAL_PARAMETERS["oracle"] * 4
    from spf_bench import zoo

    count, size = tensor_bytes(zoo.load(name, source=source, device="meta"))
    if size == 0:
        # Networks run by onnxruntime (the face models from files) have no torch tensors:
        # their files' size is their weights' size.
        from spf_bench.zoo import registry

        folder = registry.folder_for(name, source)
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder and folder.is_dir() else 0
        count = size // 4
    return count, size


@dataclass(frozen=True)
class NetworkPlan:
    name: str
    weights: int  # bytes
    per_image: int  # bytes of activations per image in a batch
    batch_size: int

    @property
    def working_set(self) -> int:
        return self.weights + self.per_image * (1 if self.name in ONE_AT_A_TIME else self.batch_size)


def plan_network(name: str, source: str, batch_size: int) -> NetworkPlan:
    count, size = weight_bytes(name, source)
    scale = min(1.0, count / REAL_PARAMETERS[name]) if REAL_PARAMETERS.get(name) else 1.0
    return NetworkPlan(name, size, int(ACTIVATION_PER_IMAGE.get(name, 256 * MIB) * scale), batch_size)


def plan_batches(names, source: str, batch_size: int, max_memory_gb: float | None) -> dict[str, NetworkPlan]:
    """Each network's plan; under a budget the largest batch <= ``batch_size`` that fits.

    Raises :class:`SpfError` when a network does not fit even one image at a time, naming it,
    its estimate and the budget, before anything is loaded.
    """
    if max_memory_gb is None:  # no budget: nothing to count (the meta builds take seconds each)
        return {name: NetworkPlan(name, 0, 0, batch_size) for name in names}
    if max_memory_gb <= 0:
        raise SpfError(f"--max-memory must be a positive number of GB, not {max_memory_gb:g}.")
    budget = max_memory_gb * GIB
    plans = {name: plan_network(name, source, batch_size) for name in names}
    fitted = {}
    for name, plan in plans.items():
        one = NetworkPlan(name, plan.weights, plan.per_image, 1)
        if one.working_set > budget:
            raise SpfError(f"Scoring cannot fit in {max_memory_gb:g} GB: the '{name}' network alone needs about "
                           f"{one.working_set / GIB:.1f} GB ({plan.weights / GIB:.1f} GB of weights on '{source}' and "
                           f"one image's activations); raise --max-memory or leave out the metrics that use it.")
        room = budget - plan.weights
        fits = int(room // plan.per_image) if plan.per_image else batch_size
        fitted[name] = NetworkPlan(name, plan.weights, plan.per_image, max(1, min(batch_size, fits)))
    return fitted
