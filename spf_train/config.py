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
from typing import Any, Literal

from spf_bench.core.atomic import write_json_atomic
from spf_bench.core.errors import SpfError

from spf_train.config_options import add_config_arguments, literal_choices  # noqa: F401  (the flags live there)

CONFIG_FILE_NAME = "spf_config.json"


Precision = Literal["no", "fp16", "bf16"]
# diffusers.optimization.SchedulerType's names (a test keeps the two lists equal); listed
# here so that the command line is built without importing diffusers.
LrScheduler = Literal["linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
                      "constant_with_warmup", "piecewise_constant"]


@dataclass
class TrainConfig:
    """Fields every training command shares (data, model, optimizer, loop, checkpoints).

    Every field carries a string right below it: the sentence that ``--help``, the option
    reference (docs/training-options.md) and config-file errors show for it. A ``Literal``
    type lists the values a field accepts.
    """

    data_dir: str = ""
    """Training image folder with its metadata.jsonl (see docs/formats.md)."""
    output_dir: str = "spf-train-out"
    """Folder the trained model, its checkpoints, train_log.jsonl and spf_config.json go to."""
    base_model: str = "tiny"
    """Stable Diffusion 1.x weights to fine-tune: tiny, random, pretrained, synth, or a diffusers pipeline folder."""
    clip_model: str = "tiny"
    """CLIP for the losses that need one: tiny, random, pretrained, synth, or an open_clip folder."""
    resolution: int = 0
    """Training image size in pixels; 0 takes the base model's native size."""
    train_batch_size: int = 8
    """Images per micro-batch."""
    gradient_accumulation_steps: int = 1
    """Micro-batches whose gradients add up to one optimizer step."""
    mixed_precision: Precision = "no"
    """Autocast precision of the forward passes (accelerate); trainable weights always stay in float32."""
    learning_rate: float = 1e-5
    """Peak learning rate of AdamW."""
    adam_beta1: float = 0.9
    """AdamW's first-moment decay."""
    adam_beta2: float = 0.999
    """AdamW's second-moment decay."""
    adam_weight_decay: float = 0.01
    """AdamW's decoupled weight decay."""
    adam_epsilon: float = 1e-8
    """AdamW's denominator epsilon."""
    max_grad_norm: float = 1.0
    """Gradient norm clipped to this value before each step; 0 turns clipping off."""
    lr_scheduler: LrScheduler = "constant"
    """Learning-rate schedule, by its name in diffusers.optimization.get_scheduler."""
    lr_warmup_steps: int = 0
    """Optimizer steps of linear warm-up at the start of the schedule."""
    num_epochs: int = 2
    """Passes over the training set, used when max_steps is 0."""
    max_steps: int = 0
    """Optimizer steps to train; 0 trains num_epochs over the data."""
    checkpoint_every: int = 500
    """Optimizer steps between resumable checkpoints; 0 writes none."""
    checkpoints_total_limit: int = 0
    """Keep only the newest N checkpoints; 0 keeps them all."""
    resume: str = "latest"
    """Where a run restarts: latest (the newest checkpoint in output_dir, if any), none, or a checkpoints/step-N folder."""
    seed: int = 0
    """Seed of the data order, noise and timesteps."""
    skip_bad: bool = False
    """Drop invalid dataset rows (listed in the log) instead of stopping at the first one."""
    latent_cache: bool = False
    """Encode every training image once with the VAE encoder and sample z0 from the cached distribution.

    The latent distribution's mean and log-variance are kept on disk (in OUT/latent_cache);
    a step then samples z0 with the run's own generator instead of running the encoder: the
    same distribution of z0, without the encoder's cost (about a third of a stage-1 step at
    512 px). Horizontal flips or other pixel augmentations are not applied on this path."""
    log_every: int = 1
    """Optimizer steps between two lines of train_log.jsonl."""
    device: str = ""
    """Device to train on: empty lets accelerate choose, cpu forces the CPU."""


@dataclass
class Stage1Config(TrainConfig):
    """Stage 1: full-UNet fine-tuning with L_diff on the full caption (Eq. 1)."""


@dataclass
class LossWeights:
    """Eq. 15: L = L_diff + attn·L_attn + unet·L_unet + re·L_re. (choice) The paper's 0.2,
    0.1, 0.6 are assigned in this order: attn, unet, re."""

    diff: float = 1.0
    """Weight of the diffusion loss L_diff."""
    attn: float = 0.2
    """Weight of the attention alignment loss L_attn (Eq. 6)."""
    unet: float = 0.1
    """Weight of the UNet feature alignment loss L_unet (Eq. 7)."""
    re: float = 0.6
    """Weight of the response enhancement loss L_re (Eq. 12-13), or of L_clip with direct_clip."""


StageTwoTrainable = Literal["xattn", "full", "lora-xattn", "adapter-xattn"]


@dataclass
class Stage2Config(TrainConfig):
    """Stage 2: dual-path contrastive learning (Sec. 3.2-3.4)."""

    # Fields redefined for a new default keep the documentation of TrainConfig's field.
    learning_rate: float = 5e-5
    train_batch_size: int = 2
    num_epochs: int = 5
    init_from: str = ""
    """Required: the stage-1 output folder stage 2 starts from, or original for the original weights (Tab. 5's "only stage 2")."""
    trainable: StageTwoTrainable = "xattn"
    """The part of the UNet stage 2 trains (Tab. 4): cross-attention, the full UNet, a LoRA or an adapter on cross-attention."""
    lora_rank: int = 4
    """Rank of the cross-attention LoRA when trainable is lora-xattn."""
    weights: LossWeights = field(default_factory=LossWeights)
    no_attn: bool = False
    """Ablation: drop the attention alignment loss L_attn."""
    no_unet: bool = False
    """Ablation: drop the UNet feature alignment loss L_unet."""
    no_re: bool = False
    """Ablation: drop the response enhancement loss L_re (and L_clip)."""
    no_sfcm: bool = False
    """Ablation: M = 0, so the alignment losses act everywhere instead of outside the SFCM."""
    direct_clip: bool = False
    """Ablation: the direct CLIP loss L_clip (Eq. 14) in place of L_re."""
    re_decode_size: Literal["full", "clip"] = "full"
    """(choice) Where the one-step prediction is decoded for L_re and L_clip: at full size, or at CLIP's input size.

    ``full``: decode the predicted latent at its own size, then resize the image to CLIP's
    input (the method as written). ``clip``: resize the predicted latent to CLIP's input
    size / 8 (28x28 for 224 px) and decode that, so the decoder's forward and backward run
    on 224 px instead of 512 px (about 5x less decoder arithmetic); the CLIP input is then
    the decoder output itself, not a resized 512 px image."""
    phrase_split: Literal["comma-and", "comma"] = "comma-and"
    """(choice) How c_b is split into phrases for Eq. 9: on commas and the word "and", or on commas only."""
    attn_features: Literal["per-head"] = "per-head"
    """(choice) A^l is taken per head, before the output projection (Eq. 3-5); named so a checkpoint records it."""
    unet_features: Literal["xattn-input"] = "xattn-input"
    """(choice) h^l are the hidden states entering cross-attention layer l; named so a checkpoint records it."""
    mask_resize: Literal["bilinear", "area", "nearest"] = "bilinear"
    """(choice) How the SFCM M is resized to a layer's grid."""
    exclusion_norm: Literal["weight-sum", "none"] = "weight-sum"
    """(choice) Eq. 10's exclusion map X: the weighted mean sum_i w_i A_i / sum_i w_i, or the plain sum clipped at 1.

    ``weight-sum`` keeps X in [0, 1] whatever the number of phrases; ``none`` keeps the plain
    sum sum_i w_i A_i, clipped at 1 so that 1 - X stays a weight."""
    mask_variant: Literal["sfcm", "inverted", "ones", "oracle"] = "sfcm"
    """The map M that weights the alignment losses by (1 - M): the SFCM, 1 - SFCM, all ones, or the ground-truth target region.

    ``oracle`` is the ground-truth target region of each training image at latent size, which
    only training sets that record it (``target_mask``, the synthetic world's) can give; the
    variants test the map itself. M = 0 is ``no_sfcm``."""
    relevance: Literal["one-minus-cos"] = "one-minus-cos"
    """(choice) Phrase relevance weights w_i = 1 - max(cos(CLIP_T(p_i), CLIP_T(c_t)), 0) (Eq. 10)."""
    sfcm_combine: Literal["soft-times-not-excluded"] = "soft-times-not-excluded"
    """(choice) How Eq. 10 combines the maps: M = norm(M_soft ⊙ (1 - X)), X = sum_i w_i A_i / sum_i w_i."""


@dataclass
class LoraTrainConfig(TrainConfig):
    """Baseline: peft LoRA on the UNet attention layers, trained with L_diff."""

    learning_rate: float = 1e-4
    rank: int = 4
    """Rank of every LoRA update (the inner size of its two matrices)."""
    alpha: float = 0.0
    """LoRA alpha; 0 sets it to the rank, i.e. scale 1 (what diffusers' loader assumes without metadata)."""
    target_modules: str = "to_q,to_k,to_v,to_out.0"
    """Comma-separated projections of every attention layer (self and cross) that get a LoRA."""


@dataclass
class AdaLoraTrainConfig(LoraTrainConfig):
    """Baseline: peft AdaLoRA, with update_and_allocate called after every backward pass."""

    init_r: int = 8
    """Rank every adapted layer starts with."""
    target_r: int = 4
    """Average rank left after pruning."""
    tinit: int = 0
    """Steps of warm-up before ranks are pruned."""
    tfinal: int = 0
    """Steps at the end with the final ranks fixed."""
    delta_t: int = 1
    """Steps between two rank re-allocations."""
    beta1: float = 0.85
    """Smoothing of the sensitivity scores (peft's default)."""
    beta2: float = 0.85
    """Smoothing of the sensitivity uncertainty (peft's default)."""
    orth_reg_weight: float = 0.5
    """Weight of AdaLoRA's orthogonality regulariser on P and Q."""


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
    if typing.get_origin(typ) is Literal:
        allowed = typing.get_args(typ)
        if value not in allowed:
            raise SpfError(f"Option '{name}' must be one of {', '.join(allowed)}, not {value!r}.")
        return value
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
