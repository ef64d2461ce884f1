"""Which UNet parameters train: the whole UNet, the cross-attention projections, or adapters.

- ``full``: every UNet weight (stage 1; Tab. 4 "full").
- ``xattn``: the cross-attention projections of every ``attn2`` (to_q, to_k, to_v, to_out),
  the paper's stage-2 choice (Appendix B).
- ``lora-xattn``: a peft LoRA on the same projections, base weights frozen (Tab. 4).
- ``adapter-xattn``: a parallel trainable copy of every ``attn2``, output added, original
  frozen (Tab. 4; see ``spf_train.xattn_adapter``). It wraps the layers' attention
  processors, so it must be added after any capture processors are installed.
- ``lora`` / ``adalora`` baselines: peft LoRA / AdaLoRA on the projections of every
  attention layer (self and cross), see :func:`add_lora` and :func:`add_adalora`.
"""

from __future__ import annotations

import typing

import torch

from spf_bench.core.errors import SpfError

from spf_train.config import StageTwoTrainable

STAGE2_TRAINABLE = typing.get_args(StageTwoTrainable)
ATTENTION_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")
CROSS_ATTENTION_PATTERN = r".*attn2\.(to_q|to_k|to_v|to_out\.0)$"


def is_cross_attention_parameter(name: str) -> bool:
    """True for the weights and biases of an ``attn2`` projection (to_q/k/v, to_out.0)."""
    return ".attn2." in name and any(f".attn2.{proj}." in name for proj in ATTENTION_PROJECTIONS)


def train_full(unet) -> list[torch.nn.Parameter]:
    unet.requires_grad_(True)
    return list(unet.parameters())


def train_cross_attention(unet) -> list[torch.nn.Parameter]:
    unet.requires_grad_(False)
    params = []
    for name, param in unet.named_parameters():
        if is_cross_attention_parameter(name):
            param.requires_grad_(True)
            params.append(param)
    return params


def add_lora(unet, rank: int, alpha: float, target_modules) -> list[torch.nn.Parameter]:
    """Inject a peft LoRA into ``unet`` the diffusers way (``unet.add_adapter``); only the
    LoRA matrices train. ``alpha`` 0 means alpha = rank (scale 1)."""
    from peft import LoraConfig

    unet.requires_grad_(False)
    config = LoraConfig(r=rank, lora_alpha=alpha or rank, init_lora_weights="gaussian", target_modules=target_modules)
    unet.add_adapter(config)
    return [p for n, p in unet.named_parameters() if "lora_" in n and p.requires_grad]


def add_adalora(unet, config, total_step: int):
    """Wrap ``unet`` in a peft AdaLoRA model; returns the ``PeftModel``.

    AdaLoRA re-allocates ranks only inside ``update_and_allocate(step)``, which must be called
    after every backward pass (before the gradients are cleared); the baseline's task does.
    Injecting the layers with ``unet.add_adapter`` alone would never call it, so ranks would
    silently stay at ``init_r``.
    """
    from peft import AdaLoraConfig, get_peft_model

    unet.requires_grad_(False)
    tfinal = config.tfinal
    adaconfig = AdaLoraConfig(
        init_r=config.init_r, target_r=config.target_r, lora_alpha=config.alpha or config.init_r,
        target_modules=[m.strip() for m in config.target_modules.split(",") if m.strip()],
        tinit=config.tinit, tfinal=tfinal, deltaT=config.delta_t, beta1=config.beta1, beta2=config.beta2,
        orth_reg_weight=config.orth_reg_weight, total_step=total_step,
    )
    return get_peft_model(unet, adaconfig)


def select_stage2_trainable(unet, kind: str, lora_rank: int = 4) -> list[torch.nn.Parameter]:
    """Set ``requires_grad`` for the stage-2 trainable part ``kind``; returns those parameters."""
    if kind == "xattn":
        return train_cross_attention(unet)
    if kind == "full":
        return train_full(unet)
    if kind == "lora-xattn":
        return add_lora(unet, lora_rank, lora_rank, CROSS_ATTENTION_PATTERN)
    if kind == "adapter-xattn":
        from spf_train.xattn_adapter import add_xattn_adapters

        return add_xattn_adapters(unet)
    raise SpfError(f"Unknown trainable part '{kind}'; choose one of: {', '.join(STAGE2_TRAINABLE)}.")


def merge_into_weights(unet):
    """Fold an injected LoRA into the base weights and remove it, so that a plain diffusers
    pipeline folder holds the trained model (stage-2 outputs are pipeline folders)."""
    if getattr(unet, "peft_config", None):
        unet.fuse_lora()
        unet.unload_lora()
    return unet
