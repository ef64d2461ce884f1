"""Training configs: one dataclass per command, read from YAML or TOML, overridden by flags.

Precedence: dataclass defaults < config file < command-line flags. The resolved config is
written as ``spf_config.json`` beside every output (and every intermediate checkpoint), so a
checkpoint says how it was made.

Every **(choice)** of ``METHOD.md`` is a named field here; its docstring-comment says what it
changes. Defaults are the paper's settings (Sec. 4.1, Appendix B) where the paper gives them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spf_bench.core.atomic import write_json_atomic
from spf_bench.core.errors import SpfError

CONFIG_FILE_NAME = "spf_config.json"


@dataclass
class TrainConfig:
    """Fields every training command shares (data, model, optimizer, loop, checkpoints)."""

    data_dir: str = ""  # image folder with metadata.jsonl (see spf_train.data)
    output_dir: str = "spf-train-out"
    base_model: str = "tiny"  # tiny | random | pretrained | path to a diffusers SD1.x folder
    clip_model: str = "tiny"  # tiny | random | pretrained | path to an open_clip folder
    resolution: int = 0  # training size in pixels; 0 = the base model's native size
    train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "no"  # no | fp16 | bf16 (accelerate); trainable weights stay fp32
    learning_rate: float = 1e-5
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_weight_decay: float = 0.01
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    lr_scheduler: str = "constant"  # any name diffusers.optimization.get_scheduler knows
    lr_warmup_steps: int = 0
    num_epochs: int = 2
    max_steps: int = 0  # optimizer steps; 0 = num_epochs over the data
    checkpoint_every: int = 500  # optimizer steps between resumable checkpoints
    checkpoints_total_limit: int = 0  # keep only the newest N checkpoints; 0 = keep all
    resume: str = "latest"  # latest | none | path to a checkpoints/step-N folder
    seed: int = 0
    skip_bad: bool = False  # drop invalid dataset rows (reported) instead of stopping
    latent_cache: bool = False
    """Encode every training image once with the VAE encoder and keep the latent
    distribution's mean and log-variance (on disk, in OUT/latent_cache). A step then samples
    z0 from the cached distribution with the run's own generator instead of running the
    encoder: the same distribution of z0, without the encoder's cost (about a third of a
    stage-1 step at 512 px). Horizontal flips or other pixel augmentations are not applied
    on this path."""
    log_every: int = 1
    device: str = ""  # empty: accelerate chooses; "cpu" forces the CPU


@dataclass
class Stage1Config(TrainConfig):
    """Stage 1: full-UNet fine-tuning with L_diff on the full caption (Eq. 1)."""


@dataclass
class LossWeights:
    """Eq. 15: L = L_diff + attn·L_attn + unet·L_unet + re·L_re. (choice) The paper's 0.2,
    0.1, 0.6 are assigned in this order: attn, unet, re."""

    diff: float = 1.0
    attn: float = 0.2
    unet: float = 0.1
    re: float = 0.6


@dataclass
class Stage2Config(TrainConfig):
    """Stage 2: dual-path contrastive learning (Sec. 3.2-3.4)."""

    learning_rate: float = 5e-5
    train_batch_size: int = 2
    num_epochs: int = 5
    init_from: str = "original"  # path to a stage-1 output folder, or "original" (Tab. 5 "only stage 2")
    trainable: str = "xattn"  # xattn | full | lora-xattn | adapter-xattn (Tab. 4)
    lora_rank: int = 4  # for trainable=lora-xattn
    weights: LossWeights = field(default_factory=LossWeights)
    no_attn: bool = False  # ablation: drop L_attn
    no_unet: bool = False  # ablation: drop L_unet
    no_re: bool = False  # ablation: drop L_re (and L_clip)
    no_sfcm: bool = False  # ablation: M = 0, i.e. the alignment losses act everywhere
    direct_clip: bool = False  # ablation: L_clip (Eq. 14) in place of L_re
    re_decode_size: str = "full"
    """(choice) Where the one-step prediction is decoded for L_re / L_clip. ``full``: decode
    the predicted latent at its own size, then resize the image to CLIP's input (the method
    as written). ``clip``: resize the predicted latent to CLIP's input size / 8 (28x28 for
    224 px) and decode that, so the decoder's forward and backward run on 224 px instead
    of 512 px (about 5x less decoder arithmetic); the CLIP input is then the decoder output
    itself, not a resized 512 px image."""
    phrase_split: str = "comma-and"
    """(choice) How c_b is split into phrases for Eq. 9: ``comma-and`` splits on commas and
    on the word "and"; ``comma`` on commas only."""
    attn_features: str = "per-head"
    """(choice) A^l is taken per head, before the output projection (Eq. 3-5). The only
    value implemented; kept as a name so a checkpoint records it."""
    unet_features: str = "xattn-input"
    """(choice) h^l are the hidden states entering cross-attention layer l."""
    mask_resize: str = "bilinear"  # (choice) how M is resized to a layer's grid: bilinear | area | nearest
    relevance: str = "one-minus-cos"  # (choice) w_i = 1 - max(cos(CLIP_T(p_i), CLIP_T(c_t)), 0)
    sfcm_combine: str = "soft-times-not-excluded"
    """(choice) How Eq. 10 combines the maps: M = norm(M_soft ⊙ (1 - X)) with the exclusion
    map X = sum_i w_i A_i / sum_i w_i. The only value implemented; named so a checkpoint
    records it."""


@dataclass
class LoraTrainConfig(TrainConfig):
    """Baseline: peft LoRA on the UNet attention layers, trained with L_diff."""

    learning_rate: float = 1e-4
    rank: int = 4
    alpha: float = 0.0  # 0 = rank, i.e. scale 1 (what diffusers' loader assumes without metadata)
    target_modules: str = "to_q,to_k,to_v,to_out.0"  # of every attention layer (self and cross)


@dataclass
class AdaLoraTrainConfig(LoraTrainConfig):
    """Baseline: peft AdaLoRA, with update_and_allocate called after every backward pass."""

    init_r: int = 8
    target_r: int = 4
    tinit: int = 0  # steps of warm-up before ranks are pruned
    tfinal: int = 0  # steps at the end with the final ranks fixed
    delta_t: int = 1  # steps between two rank re-allocations
    beta1: float = 0.85  # sensitivity smoothing (peft's defaults)
    beta2: float = 0.85
    orth_reg_weight: float = 0.5  # weight of AdaLoRA's orthogonality regulariser on P and Q


# --------------------------------------------------------------------------- files and flags

def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML (.yaml/.yml), TOML (.toml) or JSON (.json) file as a dict."""
    path = Path(path)
    if not path.is_file():
        raise SpfError(f"The config file {path} does not exist.")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise SpfError(f"The config file {path} must end in .yaml, .yml, .toml or .json.")
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise SpfError(f"The config file {path} cannot be parsed ({str(exc).splitlines()[0]}).") from None
    if not isinstance(data, dict):
        raise SpfError(f"The config file {path} must hold a mapping of option names to values.")
    return data


def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls, data: dict[str, Any], source: str = "config"):
    """Build ``cls`` from a (possibly nested) dict; unknown keys are an error naming them."""
    types = _field_types(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpfError(f"Unknown option(s) {', '.join(unknown)} in the {source}; known: {', '.join(sorted(known))}.")
    kwargs = {}
    for name, value in data.items():
        typ = types[name]
        if dataclasses.is_dataclass(typ):
            if not isinstance(value, dict):
                raise SpfError(f"Option '{name}' in the {source} must be a mapping.")
            kwargs[name] = from_dict(typ, value, f"{source} section '{name}'")
        else:
            kwargs[name] = _coerce(name, typ, value)
    return cls(**kwargs)


def _coerce(name: str, typ: Any, value: Any) -> Any:
    try:
        if typ is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        return typ(value)
    except (TypeError, ValueError):
        raise SpfError(f"Option '{name}' must be a {getattr(typ, '__name__', typ)}, not {value!r}.") from None


def _flat_fields(cls, prefix: str = ""):
    """(dotted name, type, default) of every leaf field, nested dataclasses flattened."""
    types = _field_types(cls)
    for f in dataclasses.fields(cls):
        typ = types[f.name]
        if dataclasses.is_dataclass(typ):
            yield from _flat_fields(typ, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", typ


def add_config_arguments(parser: argparse.ArgumentParser, cls) -> None:
    """``--config FILE`` plus one ``--option`` flag per field (``--weights.attn 0.3`` for nested)."""
    parser.add_argument("--config", help="YAML or TOML file of options; flags override it")
    for name, typ in _flat_fields(cls):
        flag = "--" + name.replace("_", "-")
        dest = "cfg__" + name.replace(".", "__")
        if typ is bool:
            parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None)
        else:
            parser.add_argument(flag, dest=dest, default=None, metavar=typ.__name__.upper())


def resolve_config(cls, args: argparse.Namespace):
    """defaults < ``args.config`` file < flags given on the command line."""
    data = read_config_file(args.config) if getattr(args, "config", None) else {}
    for key, value in vars(args).items():
        if not key.startswith("cfg__") or value is None:
            continue
        *parents, leaf = key[len("cfg__"):].split("__")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return from_dict(cls, data)


def config_to_dict(config) -> dict[str, Any]:
    return {"config_class": type(config).__name__, **dataclasses.asdict(config)}


def save_config(config, folder: str | os.PathLike) -> Path:
    """Write the resolved config as ``spf_config.json`` in ``folder`` (atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CONFIG_FILE_NAME
    write_json_atomic(path, config_to_dict(config), indent=2)
    return path


def load_saved_config(cls, folder: str | os.PathLike):
    data = json.loads((Path(folder) / CONFIG_FILE_NAME).read_text())
    data.pop("config_class", None)
    return from_dict(cls, data, f"saved config in {folder}")
