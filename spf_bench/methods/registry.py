"""The method registry: a method's name -> how its pipeline is built from its checkpoint.

Each entry is a :class:`MethodSpec`: the kind of checkpoint it reads (a diffusers pipeline
folder, a LoRA, an AdaLoRA adapter, or none), a builder, and the training recipe that makes
a small checkpoint when the user brings none (used on the tiny default). Builders may be
given as ``"package.module:function"`` strings, imported only when the method is used, so
importing the registry never imports a method's heavy dependencies.

Other modules add methods with :func:`register_method`; modules listed in
``EXTENSION_MODULES`` are imported the first time the registry is consulted, so their
``register_method`` calls run before any lookup. An unknown name or a missing checkpoint is
one sentence that lists what exists.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from spf_bench.generation.base_model import BASE_NETWORK, base_sha256, dtype_name, load_base
from spf_bench.core.errors import SpfError
from spf_bench.core.fingerprint import hash_json, hash_path_cached
from spf_bench.generation.sampling import default_encode

# Checkpoint kinds, with the sentence that tells a user what to bring.
PIPELINE, LORA, ADALORA = "pipeline", "lora", "adalora"
CHECKPOINT_KINDS = {
    PIPELINE: "a diffusers Stable Diffusion folder (an spf-train output)",
    LORA: "a LoRA: a diffusers pytorch_lora_weights.safetensors file or a peft adapter folder",
    ADALORA: "a peft AdaLoRA adapter folder (adapter_config.json + weights) or a diffusers LoRA file",
}

# Modules that register further methods when imported (see register_method).
EXTENSION_MODULES: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainRecipe:
    """How to train a method's checkpoint: an spf-train trainer and its config overrides."""

    trainer: str  # stage1 | stage2 | lora | adalora | tokencompose (spf_bench.methods.training)
    overrides: dict = field(default_factory=dict)
    init_from: str | None = None  # method whose checkpoint initialises this one


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
        # The prompts' (base, target) split is keyed by the prompt itself in the generation
        # cache, so it stays out of the identity: the same method keeps one fingerprint
        # across triple sets.
        options = {k: v for k, v in self.options.items() if k != "captions"}
        return hash_json({"method": self.method, "base": base_sha256(self.weights), "checkpoint": checkpoint,
                          "dtype": dtype_name(self.dtype), "device": self.device.type, "options": options, **extra})


@dataclass
class MethodModel:
    """A built method: its pipeline, its identity, and (optionally) its own text conditioning."""

    name: str
    pipe: Any
    fingerprint: str
    checkpoint_sha256: str | None = None
    encode: Callable[[list[str]], torch.Tensor] | None = None  # e.g. Magnet's adjusted embeddings

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        return self.encode(prompts) if self.encode is not None else default_encode(self.pipe, prompts)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    summary: str
    build: Callable[[BuildRequest], MethodModel] | str
    checkpoint: str | None = None  # a key of CHECKPOINT_KINDS, or None for training-free methods
    recipe: TrainRecipe | None = None

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
                    checkpoint: str | None = None, recipe: TrainRecipe | None = None, replace: bool = False) -> MethodSpec:
    """Add a method. ``build(request) -> MethodModel``; ``checkpoint`` the kind it reads."""
    if checkpoint is not None and checkpoint not in CHECKPOINT_KINDS:
        raise SpfError(f"Unknown checkpoint kind '{checkpoint}' for method '{name}'; known kinds: {', '.join(CHECKPOINT_KINDS)}.")
    if name in _METHODS and not replace:
        raise SpfError(f"The method '{name}' is registered twice.")
    spec = MethodSpec(name, summary, build, checkpoint, recipe)
    _METHODS[name] = spec
    return spec


def _load_extensions() -> None:
    global _extensions_loaded
    if _extensions_loaded:
        return
    _extensions_loaded = True
    for module in EXTENSION_MODULES:
        importlib.import_module(module)


def known_methods() -> dict[str, MethodSpec]:
    _load_extensions()
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


# ----------------------------------------------------------------------------- the methods

def _stage2(summary: str, init_from: str | None = "naive", **overrides) -> dict:
    return dict(summary=summary, build=build_pipeline_checkpoint, checkpoint=PIPELINE,
                recipe=TrainRecipe("stage2", overrides, init_from))


register_method("base", summary="the original model given the full caption", build=build_base)
register_method("naive", summary="stage 1 only: full-UNet fine-tuning with L_diff", build=build_pipeline_checkpoint,
                checkpoint=PIPELINE, recipe=TrainRecipe("stage1"))
register_method("lora", summary="peft LoRA on the UNet attention, trained with L_diff", build=build_adapter,
                checkpoint=LORA, recipe=TrainRecipe("lora"))
register_method("adalora", summary="peft AdaLoRA on the UNet attention, trained with L_diff", build=build_adapter,
                checkpoint=ADALORA, recipe=TrainRecipe("adalora"))
register_method("ours", **_stage2("SPF-Portrait: stage 1 then dual-path stage 2 on cross-attention"))
register_method("ours-no-attn", **_stage2("ablation: without L_attn", no_attn=True))
register_method("ours-no-unet", **_stage2("ablation: without L_unet", no_unet=True))
register_method("ours-no-re", **_stage2("ablation: without L_re", no_re=True))
register_method("ours-no-sfcm", **_stage2("ablation: without SFCM (M = 0)", no_sfcm=True))
# The map itself under test: everything as ours but M (M = 0 is ours-no-sfcm above).
register_method("ours-mask-oracle", **_stage2("M = the ground-truth target region (synthetic world sets only)",
                                              mask_variant="oracle"))
register_method("ours-mask-inverted", **_stage2("M = 1 - SFCM", mask_variant="inverted"))
register_method("ours-mask-ones", **_stage2("M = 1: no alignment anywhere", mask_variant="ones"))
register_method("ours-direct-clip", **_stage2("ablation: L_clip (Eq. 14) instead of L_re", direct_clip=True))
register_method("stage2-full", **_stage2("Tab. 4: stage 2 training the full UNet", trainable="full"))
register_method("stage2-lora-xattn", **_stage2("Tab. 4: stage 2 training a LoRA on cross-attention", trainable="lora-xattn"))
register_method("stage2-adapter-xattn", **_stage2("Tab. 4: stage 2 training an adapter on cross-attention", trainable="adapter-xattn"))
register_method("only-stage2", **_stage2("Tab. 5: stage 2 from the original weights", init_from=None))
# Sets drawn by the base model carry no grounding masks: the automatic TokenCompose checkpoint
# grounds subject and target attribute at portrait-layout points with the zoo's SAM.
register_method("tokencompose", summary="TokenCompose: fine-tuning with token- and pixel-level grounding losses",
                build=build_pipeline_checkpoint, checkpoint=PIPELINE,
                recipe=TrainRecipe("tokencompose", {"missing_grounding": "layout-sam"}))
register_method("magnet", summary="Magnet: training-free binding vectors on the subject's text embedding",
                build="spf_bench.methods.magnet:build_magnet")


# ----------------------------------------------------------------------------- checkpoints

def parse_checkpoint_args(pairs: list[str]) -> dict[str, Path]:
    """``NAME=PATH`` strings (from ``--checkpoint``) as a mapping, names checked."""
    out = {}
    for pair in pairs or []:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise SpfError(f"'{pair}' is not of the form NAME=PATH (e.g. --checkpoint ours=out/stage2).")
        name = canonical_method(name.strip())
        get_method(name)
        out[name] = Path(path.strip()).expanduser()
    return out


def read_methods_file(path: Path) -> dict[str, Path]:
    """A methods file: YAML, JSON or TOML mapping method names to checkpoint paths.

    Either ``{ours: path, lora: path}`` or ``{checkpoints: {ours: path}}``; relative paths are
    taken from the file's folder, so a results bundle can carry its file and checkpoints.
    """
    path = Path(path)
    if not path.is_file():
        raise SpfError(f"The methods file {path} does not exist.")
    data = _read_mapping(path)
    data = data.get("checkpoints", data) if isinstance(data, dict) else data
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise SpfError(f"The methods file {path} must map method names to checkpoint paths.")
    out = {}
    for name, value in data.items():
        name = canonical_method(name)
        get_method(name)
        target = Path(value).expanduser()
        out[name] = target if target.is_absolute() else path.parent / target
    return out


def _read_mapping(path: Path):
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            import json

            return json.loads(text)
        if path.suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
        import yaml

        return yaml.safe_load(text)
    except Exception as exc:  # each parser has its own error type; all mean "not readable"
        raise SpfError(f"The methods file {path} cannot be parsed ({type(exc).__name__}).") from None
