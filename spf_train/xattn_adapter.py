"""The cross-attention adapter of Tab. 4: a parallel, trainable copy of every ``attn2``
whose output is added to the frozen original's.

The copy starts as the layer's own projections with its output projection set to zero, so
a freshly adapted UNet predicts exactly what the original does and training moves it away
from there. It lives in the layer's attention processor (an ``nn.Module``, so its weights
are part of ``unet.parameters()`` and of accelerate's checkpoints) and wraps whatever
processor was there before, such as the stage-2 capture processor.

(choice, ``adapter-xattn``) The variant attention A_res^l recorded for L_attn is that of the
frozen branch; the adapter moves it through the hidden states of the layers after it, while
h^l and the noise prediction include the adapter's output.

Saved as ``xattn_adapter.safetensors`` beside the pipeline folder (whose UNet is the frozen
original); :func:`load_xattn_adapter` re-attaches it to a loaded pipeline's UNet.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from spf_bench.core.errors import SpfError

ADAPTER_FILE = "xattn_adapter.safetensors"
_ADAPTER_KEY = ".processor.branch."


class CrossAttentionBranch(torch.nn.Module):
    """Plain multi-head attention with its own copies of a layer's projections."""

    def __init__(self, attn):
        super().__init__()
        self.heads = attn.heads
        self.scale = attn.scale
        self.to_q = copy.deepcopy(attn.to_q)
        self.to_k = copy.deepcopy(attn.to_k)
        self.to_v = copy.deepcopy(attn.to_v)
        self.to_out = copy.deepcopy(attn.to_out[0])
        torch.nn.init.zeros_(self.to_out.weight)
        if self.to_out.bias is not None:
            torch.nn.init.zeros_(self.to_out.bias)

    def forward(self, hidden_states, context):
        batch = hidden_states.shape[0]
        q, k, v = self.to_q(hidden_states), self.to_k(context), self.to_v(context)
        head_dim = k.shape[-1] // self.heads
        q, k, v = (x.view(batch, -1, self.heads, head_dim).transpose(1, 2) for x in (q, k, v))
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=self.scale)
        return self.to_out(out.transpose(1, 2).reshape(batch, -1, self.heads * head_dim))


class ParallelAdapterProcessor(torch.nn.Module):
    """attn2's processor: the previous processor's output plus the trainable branch's."""

    def __init__(self, attn, inner):
        super().__init__()
        self.branch = CrossAttentionBranch(attn)
        self.inner = inner  # not a Module: the frozen path's processor (default or capture)

    def forward(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        out = self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        return out + self.branch(hidden_states, context).to(out.dtype) / attn.rescale_output_factor


def add_xattn_adapters(unet) -> list[torch.nn.Parameter]:
    """Freeze ``unet`` and wrap every ``attn2`` processor with a trainable parallel branch."""
    unet.requires_grad_(False)
    modules = dict(unet.named_modules())
    processors = {}
    for name, processor in unet.attn_processors.items():
        if name.endswith("attn2.processor"):
            processor = ParallelAdapterProcessor(modules[name.removesuffix(".processor")], processor)
        processors[name] = processor
    unet.set_attn_processor(processors)
    params = [p for n, p in unet.named_parameters() if _ADAPTER_KEY in n]
    for p in params:
        p.requires_grad_(True)
    return params


def adapter_state_dict(unet) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().contiguous() for k, v in unet.state_dict().items() if _ADAPTER_KEY in k}


def strip_xattn_adapters(unet):
    """Back to diffusers' default processors (what a pipeline folder can hold)."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    unet.set_attn_processor(AttnProcessor2_0())
    return unet


def save_xattn_adapter(unet, folder: str | Path) -> Path:
    from safetensors.torch import save_file

    path = Path(folder) / ADAPTER_FILE
    save_file(adapter_state_dict(unet), str(path))
    return path


def load_xattn_adapter(unet, folder: str | Path):
    """Attach the adapter saved in ``folder`` to ``unet`` (a UNet of the same pipeline folder)."""
    from safetensors.torch import load_file

    path = Path(folder) / ADAPTER_FILE
    if not path.is_file():
        raise SpfError(f"{folder} has no {ADAPTER_FILE}; it was not trained with trainable=adapter-xattn.")
    add_xattn_adapters(unet)
    stored = load_file(str(path))
    expected = adapter_state_dict(unet)
    if set(stored) != set(expected):
        raise SpfError(f"{path} does not fit this UNet's cross-attention layers.")
    unet.load_state_dict(stored, strict=False)
    unet.requires_grad_(False)
    return unet
