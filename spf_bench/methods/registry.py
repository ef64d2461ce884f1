"""The method registry: one record per method, holding everything the suite needs of it.

A :class:`MethodSpec` says what a method is (a one-line summary, the label tables and
pictures show, the paper rows it stands in), how its pipeline is built from its checkpoint
(the kind of checkpoint it reads and a builder) and how a small checkpoint is trained when
the user brings none (its :class:`TrainRecipe`). The tables, the leaderboard, the report,
the lab and the command-line help read these records; no other module names a method.

Builders may be given as ``"package.module:function"`` strings, imported only when the
method is used, so importing the registry never imports a method's heavy dependencies.

The suite's own methods are recorded in :mod:`spf_bench.methods.builtin`; methods from other
distributions come through the entry point group ``spf_bench.methods`` (see
``docs/extending.md``). Both are read the first time the registry is consulted. An unknown
name or a missing checkpoint is one sentence that lists what exists.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from spf_bench.generation.base_model import BASE_NETWORK, base_sha256, dtype_name, load_base
from spf_bench.core.errors import SpfError
from spf_bench.core.fingerprint import hash_json, hash_path_cached
from spf_bench.generation.sampling import encode_joined

# Checkpoint kinds, with the sentence that tells a user what to bring.
PIPELINE, LORA, ADALORA = "pipeline", "lora", "adalora"
CHECKPOINT_KINDS = {
    PIPELINE: "a diffusers Stable Diffusion folder (an spf-train output)",
    LORA: "a LoRA: a diffusers pytorch_lora_weights.safetensors file or a peft adapter folder",
    ADALORA: "a peft AdaLoRA adapter folder (adapter_config.json + weights) or a diffusers LoRA file",
}

# Modules that register methods when imported (see register_method): the suite's own first.
EXTENSION_MODULES: tuple[str, ...] = ("spf_bench.methods.builtin",)
ENTRY_POINT_GROUP = "spf_bench.methods"


@dataclass(frozen=True)
class TrainRecipe:
    """How to train a method's checkpoint: an spf-train trainer and its config overrides."""

    trainer: str  # stage1 | stage2 | lora | adalora | tokencompose (spf_bench.methods.training)
    overrides: dict = field(default_factory=dict)
    init_from: str | None = None  # method whose checkpoint initialises this one


@dataclass(frozen=True)
class PaperRow:
    """Where a method stands in one of the paper's tables (``spf_bench.results.tables``)."""

    table: str  # tab1 | tab4 | tab5
    position: int  # rows are shown in this order
    label: str  # the row's label in that table
    section: str  # the block of rows it belongs to (Baselines, Ablations ...)


@dataclass
class BuildRequest:
    """What a builder gets: the method, the base weights, where to run and its checkpoint."""

    method: str
    weights: str
    device: torch.device
    dtype: torch.dtype
    checkpoint: Path | None
    options: dict = field(default_factory=dict)

    def base_pipe(self, dtype: torch.dtype | None = None):
        return load_base(self.weights, device=self.device, dtype=dtype or self.dtype)

    def fingerprint(self, **extra) -> str:
        """A method model's identity: everything that can change its images."""
        checkpoint = hash_path_cached(self.checkpoint) if self.checkpoint is not None else None
        return hash_json({"method": self.method, "base": base_sha256(self.weights), "checkpoint": checkpoint,
                          "dtype": dtype_name(self.dtype), "device": self.device.type, "options": self.options, **extra})


@dataclass
class MethodModel:
    """A built method: its pipeline, its identity, and (optionally) its own text conditioning."""

    name: str
    pipe: Any
    fingerprint: str
    checkpoint_sha256: str | None = None
    # Its own conditioning of (base caption, target caption) pairs, e.g. Magnet's adjusted
    # embeddings; None: the pipeline's reading of the full caption.
    encode: Callable[[list[tuple[str, str]]], torch.Tensor] | None = None

    def encode_captions(self, pairs: list[tuple[str, str]]) -> torch.Tensor:
        return self.encode(pairs) if self.encode is not None else encode_joined(self.pipe, pairs)


@dataclass(frozen=True)
class MethodSpec:
    """One method's record. ``label`` defaults to the name; ``paper_rows`` places it in
    Tab. 1 / 4 / 5; ``origin`` is the distribution that registered it (None: the suite)."""

    name: str
    summary: str
    build: Callable[[BuildRequest], MethodModel] | str
    checkpoint: str | None = None  # a key of CHECKPOINT_KINDS, or None for training-free methods
    recipe: TrainRecipe | None = None
    label: str = ""
    paper_rows: tuple[PaperRow, ...] = ()
    proposed: bool = False  # the paper's own method: the report's significance tests compare with it
    # Its images of a triple's base caption are the set's originals (the base model), so a
    # reconstruction links them instead of drawing them again.
    draws_originals: bool = False
    origin: str | None = None

    def __post_init__(self):
        if not self.label:
            object.__setattr__(self, "label", self.name)
        if self.checkpoint is not None and self.checkpoint not in CHECKPOINT_KINDS:
            raise SpfError(f"Unknown checkpoint kind '{self.checkpoint}' for method '{self.name}'; "
                           f"known kinds: {', '.join(CHECKPOINT_KINDS)}.")

    def builder(self) -> Callable[[BuildRequest], MethodModel]:
        if callable(self.build):
            return self.build
        module, _, attr = self.build.partition(":")
        return getattr(importlib.import_module(module), attr)


_METHODS: dict[str, MethodSpec] = {}
_extensions_loaded = False

# Names the synthetic-world lab once gave three methods, accepted (with a note naming the
# method they mean) for one release. The registry's names stay: they follow the other
# ablations' pattern (ours-no-*, stage2-<trainable part>), Stage2Config's switch
# (direct_clip) and the paper's rows (Tab. 4 "full weights", Tab. 5 "only stage 2").
METHOD_ALIASES = {"ours-clip": "ours-direct-clip", "ours-full-unet": "stage2-full", "ours-stage2-only": "only-stage2"}
_aliases_noted: set[str] = set()


def canonical_method(name: str) -> str:
    """``name``, or the method an old name stands for (saying so once per process on stderr)."""
    if name not in METHOD_ALIASES:
        return name
    new = METHOD_ALIASES[name]
    if name not in _aliases_noted:
        _aliases_noted.add(name)
        print(f"note: the method '{name}' is now called '{new}'; the old name is accepted for one release.", file=sys.stderr)
    return new


def register_method(name: str, *, summary: str, build: Callable[[BuildRequest], MethodModel] | str,
                    checkpoint: str | None = None, recipe: TrainRecipe | None = None, label: str = "",
                    paper_rows: tuple[PaperRow, ...] = (), replace: bool = False, **flags) -> MethodSpec:
    """Add a method. ``build(request) -> MethodModel``; ``checkpoint`` the kind it reads;
    ``flags``: MethodSpec's ``proposed`` / ``draws_originals``."""
    return add_record(MethodSpec(name, summary, build, checkpoint, recipe, label, tuple(paper_rows), **flags),
                      replace=replace)


def add_record(spec: MethodSpec, replace: bool = False) -> MethodSpec:
    if spec.name in _METHODS and not replace:
        raise SpfError(f"The method '{spec.name}' is registered twice.")
    _METHODS[spec.name] = spec
    return spec


def _load_extensions() -> None:
    global _extensions_loaded
    if _extensions_loaded:
        return
    _extensions_loaded = True
    for module in EXTENSION_MODULES:
        importlib.import_module(module)
    _read_entry_points()


def _read_entry_points() -> None:
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        for spec in _records_of(entry):
            add_record(spec)


def _records_of(entry) -> list[MethodSpec]:
    """The MethodSpec records an entry point names: a record, a list of them, or a function
    returning either. Each is checked, so a broken plug-in is one sentence naming it."""
    dist = entry.dist.name if getattr(entry, "dist", None) is not None else "an installed package"
    where = f"the '{entry.name}' entry point of {dist} (group {ENTRY_POINT_GROUP}, {entry.value})"
    try:
        value = entry.load()
        if callable(value) and not isinstance(value, MethodSpec):
            value = value()
    except Exception as exc:  # any failure of foreign code: name the plug-in, not its traceback
        raise SpfError(f"Loading {where} failed ({type(exc).__name__}: {exc}).") from None
    records = [value] if isinstance(value, MethodSpec) else list(value) if isinstance(value, (list, tuple)) else None
    if records is None or not all(isinstance(r, MethodSpec) for r in records):
        raise SpfError(f"{where} must give a spf_bench.methods.registry.MethodSpec (or a list of them), "
                       f"not {type(value).__name__}.")
    if len(records) == 1 and records[0].name != entry.name:
        raise SpfError(f"{where} records the method '{records[0].name}'; name the entry point after its method.")
    for record in records:
        if record.name in _METHODS:
            raise SpfError(f"{where} records the method '{record.name}', which the suite already has; choose another name.")
    return [MethodSpec(**{**r.__dict__, "origin": dist}) for r in records]


def known_methods() -> dict[str, MethodSpec]:
    _load_extensions()
    return dict(_METHODS)


def reload_methods() -> dict[str, MethodSpec]:
    """Read the entry points again (after a distribution was installed in this process)."""
    _load_extensions()
    for name in [n for n, spec in _METHODS.items() if spec.origin is not None]:
        _METHODS.pop(name)
    _read_entry_points()
    return dict(_METHODS)


def get_method(name: str) -> MethodSpec:
    methods = known_methods()
    name = canonical_method(name)
    if name not in methods:
        raise SpfError(f"Unknown method '{name}'; known methods are: {', '.join(methods)}.")
    return methods[name]


def build_method(name: str, weights: str, checkpoint: Path | None = None, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32, options: dict | None = None) -> MethodModel:
    """Build method ``name`` on the base ``weights``, reading ``checkpoint`` if it needs one."""
    spec = get_method(name)
    if spec.checkpoint is not None and checkpoint is None:
        raise SpfError(f"The method '{name}' needs a checkpoint ({CHECKPOINT_KINDS[spec.checkpoint]}); "
                       f"give --checkpoint {name}=PATH or list it in a methods file.")
    if checkpoint is not None and not Path(checkpoint).exists():
        raise SpfError(f"The checkpoint {checkpoint} given for method '{name}' does not exist.")
    request = BuildRequest(name, weights, torch.device(device), dtype, Path(checkpoint) if checkpoint else None, dict(options or {}))
    model = spec.builder()(request)
    model.pipe.set_progress_bar_config(disable=True)
    return model


# ----------------------------------------------------------------------------- builders

def build_base(request: BuildRequest) -> MethodModel:
    """The original model given the full caption (and, for reconstruction, the base caption)."""
    return MethodModel(request.method, request.base_pipe(), request.fingerprint())


def build_pipeline_checkpoint(request: BuildRequest) -> MethodModel:
    """A fine-tuned model saved as a whole diffusers folder (stage 1, stage 2, TokenCompose)."""
    from spf_bench.zoo import get_network

    folder = request.checkpoint
    if not folder.is_dir() or not (folder / "model_index.json").is_file():
        raise SpfError(f"The checkpoint {folder} of method '{request.method}' is not a diffusers pipeline folder "
                       "(it has no model_index.json).")
    from spf_train.xattn_adapter import ADAPTER_FILE, load_xattn_adapter

    pipe = get_network(BASE_NETWORK).load_folder(folder, device=request.device, dtype=request.dtype)
    if (folder / ADAPTER_FILE).is_file():
        # Stage 2 with trainable=adapter-xattn saves adapters that cannot be folded into the
        # weights; without them the folder is just its stage-1 initialisation.
        load_xattn_adapter(pipe.unet, folder)
        pipe.unet.to(device=request.device, dtype=request.dtype)
    return MethodModel(request.method, pipe, request.fingerprint(), hash_path_cached(folder))


def build_adapter(request: BuildRequest) -> MethodModel:
    """The base model with a LoRA or AdaLoRA merged into its UNet (see spf_bench.methods.adapters)."""
    from spf_bench.methods.adapters import apply_unet_adapter

    # Merge in float32 and cast after, so a half-precision run merges without rounding twice.
    pipe = request.base_pipe(dtype=torch.float32)
    apply_unet_adapter(pipe, request.checkpoint)
    pipe.to(dtype=request.dtype)
    return MethodModel(request.method, pipe, request.fingerprint(), hash_path_cached(request.checkpoint))


def method_label(name: str) -> str:
    """The label tables and pictures show for ``name`` (the name itself when not registered)."""
    spec = known_methods().get(name)
    return spec.label if spec is not None else name


def paper_rows(table: str) -> list[tuple[MethodSpec, PaperRow]]:
    """The registered methods that stand in ``table``, in the table's row order."""
    rows = [(spec, row) for spec in known_methods().values() for row in spec.paper_rows if row.table == table]
    return sorted(rows, key=lambda pair: pair[1].position)


def method_order(tables: tuple[str, ...]) -> tuple[str, ...]:
    """Methods in the order of the given tables' rows, then every other registered one."""
    ordered = [spec.name for table in tables for spec, _ in paper_rows(table)]
    return tuple(dict.fromkeys([*ordered, *known_methods()]))


def proposed_method() -> str | None:
    """The name of the paper's own method (its record says ``proposed``)."""
    return next((spec.name for spec in known_methods().values() if spec.proposed), None)
