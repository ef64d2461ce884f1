"""Recording the cross-attention probabilities of chosen UNet layers, with gradient.

TokenCompose's losses need ``P = softmax(Q K^T / sqrt(d))`` of the cross-attention layers
(``attn2``) while the UNet trains, so the probabilities are computed explicitly (the fused
kernels never materialise them) by a small diffusers attention processor, swapped in with
``set_attn_processor``; the library's code is left untouched. Layers not selected keep their
original processor, so they cost nothing extra.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from spf_train.capture import enter_attention, leave_attention
from spf_train.tokencompose.config import PLACES


def layer_place(name: str) -> str:
    # Read from the processor's name, e.g. "up_blocks.1.attentions.0.transformer_blocks.0.attn2.processor".
    for place in PLACES:
        if name.startswith(f"{place}_block"):
            return place
    raise ValueError(f"cannot tell where attention layer {name} sits in the UNet")


def cross_attention_names(unet, places: tuple[str, ...]) -> list[str]:
    """Names of the ``attn2`` processors in the given UNet places (``down``/``mid``/``up``)."""
    return [n for n in unet.attn_processors if ".attn2." in n and layer_place(n) in places]


@dataclass
class LayerProbs:
    name: str
    place: str
    height: int
    width: int
    probs: torch.Tensor  # (B, heads, height*width, T)

    @property
    def group(self) -> str:
        # The paper's grouping key, e.g. "up_16": layers of one place at one resolution.
        return f"{self.place}_{self.height}x{self.width}"


@dataclass
class ProbabilityStore:
    """Collects :class:`LayerProbs` during one UNet forward pass."""

    latent_size: tuple[int, int] = (0, 0)
    layers: list[LayerProbs] = field(default_factory=list)

    def reset(self, latent_size: tuple[int, int]) -> None:
        self.latent_size = latent_size
        self.layers = []

    def grid(self, tokens: int) -> tuple[int, int]:
        # Hidden states reach attn2 flattened; the grid is recovered from the latent's aspect
        # ratio, since every UNet level halves both sides.
        lh, lw = self.latent_size
        scale = math.sqrt(lh * lw / tokens)
        h, w = round(lh / scale), round(lw / scale)
        if h * w != tokens:
            raise ValueError(f"cannot map {tokens} attention queries onto a grid of aspect {lh}x{lw}")
        return h, w


class ProbabilityRecorder:
    """Attention processor equal to diffusers' ``AttnProcessor`` that also stores ``P``."""

    def __init__(self, name: str, store: ProbabilityStore):
        self.name = name
        self.place = layer_place(name)
        self.store = store

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        hidden_states, residual, shape = enter_attention(attn, hidden_states, temb)
        batch, queries, _ = hidden_states.shape
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        attention_mask = attn.prepare_attention_mask(attention_mask, context.shape[1], batch)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)

        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key = attn.head_to_batch_dim(attn.to_k(context))
        value = attn.head_to_batch_dim(attn.to_v(context))
        probs = attn.get_attention_scores(query, key, attention_mask)
        h, w = self.store.grid(queries)
        self.store.layers.append(LayerProbs(self.name, self.place, h, w, probs.view(batch, attn.heads, queries, -1)))

        out = attn.batch_to_head_dim(torch.bmm(probs, value))
        return leave_attention(attn, out, residual, shape)


@contextmanager
def recording(unet, places: tuple[str, ...]):
    """Within the block, the ``attn2`` layers of ``places`` record into the yielded store."""
    store = ProbabilityStore()
    original = unet.attn_processors
    names = set(cross_attention_names(unet, places))
    if not names:
        raise ValueError(f"the UNet has no cross-attention layer in {', '.join(places)}")
    unet.set_attn_processor({n: (ProbabilityRecorder(n, store) if n in names else p) for n, p in original.items()})
    try:
        yield store
    finally:
        unet.set_attn_processor(original)
