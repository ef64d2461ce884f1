"""Attention processors that record what stage 2 needs from every cross-attention layer.

For cross-attention layer ``l`` (every ``attn2`` of the UNet) one forward pass records:
- ``hidden[l]``: h^l, the hidden states entering the layer, (B, N, C);
- ``variant[l]``: A^l = softmax(Q K_b^T / sqrt(d)) V_b, attention restricted to the base
  tokens f_b (BOS and the tokens of c_b), per head and before the output projection
  **(choice: attn_features="per-head")**, (B, heads, N, d);
- ``probs[l]``: P^l = softmax(Q K^T / sqrt(d)) over the whole prompt, averaged over heads and
  detached (it only feeds the SFCM, which carries no gradient), (B, N, T).

The layer's own output is the ordinary attention output, so a UNet with these processors
predicts the same noise as with diffusers' default processor. Installed with
``unet.set_attn_processor`` (diffusers' public API); diffusers' code is never patched.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch


@dataclass
class AttentionRecord:
    """What one forward pass recorded, keyed by layer name (in the UNet's layer order)."""

    base_lengths: torch.Tensor | None = None  # (B,) number of base tokens per sample; None: no variant
    want_probs: bool = False
    hidden: dict[str, torch.Tensor] = field(default_factory=dict)
    variant: dict[str, torch.Tensor] = field(default_factory=dict)
    probs: dict[str, torch.Tensor] = field(default_factory=dict)

    def clear(self) -> None:
        self.hidden.clear()
        self.variant.clear()
        self.probs.clear()


def base_token_mask(base_lengths: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """(B, T) boolean: True at the base tokens [0, n_b) of each sample."""
    positions = torch.arange(n_tokens, device=base_lengths.device)
    return positions[None, :] < base_lengths[:, None]


def enter_attention(attn, hidden_states, temb):
    """diffusers' processor preamble: spatial norm and [B, C, H, W] -> [B, HW, C] tokens.

    Returns the token-layout hidden states, the residual and the 4-D shape (or None) that
    :func:`leave_attention` needs; shared by every processor that re-does attention to watch it.
    """
    residual = hidden_states
    if attn.spatial_norm is not None:
        hidden_states = attn.spatial_norm(hidden_states, temb)
    shape = None
    if hidden_states.ndim == 4:
        shape = hidden_states.shape
        b, c, height, width = shape
        hidden_states = hidden_states.view(b, c, height * width).transpose(1, 2)
    return hidden_states, residual, shape


def leave_attention(attn, out, residual, shape):
    """diffusers' processor epilogue: output projection, back to 4-D, residual and rescale."""
    out = attn.to_out[1](attn.to_out[0](out))
    if shape is not None:
        out = out.transpose(-1, -2).reshape(*shape)
    if attn.residual_connection:
        out = out + residual
    return out / attn.rescale_output_factor


class CrossAttentionCapture:
    """Attention processor for one ``attn2`` layer, writing into a shared record."""

    def __init__(self, name: str, record: AttentionRecord):
        self.name = name
        self.record = record

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        record = self.record
        hidden_states, residual, shape = enter_attention(attn, hidden_states, temb)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        record.hidden[self.name] = hidden_states
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)

        batch = hidden_states.shape[0]
        query, key, value = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        head_dim = key.shape[-1] // attn.heads
        query, key, value = (x.view(batch, -1, attn.heads, head_dim).transpose(1, 2) for x in (query, key, value))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        scores = (query @ key.transpose(-1, -2)) * attn.scale
        if attention_mask is not None:
            mask = attn.prepare_attention_mask(attention_mask, key.shape[2], batch)
            scores = scores + mask.view(batch, attn.heads, -1, mask.shape[-1])
        probs = scores.softmax(dim=-1)
        out = probs @ value

        if record.want_probs:
            record.probs[self.name] = probs.detach().mean(dim=1)
        if record.base_lengths is not None:
            keep = base_token_mask(record.base_lengths.to(scores.device), scores.shape[-1])
            base_scores = scores.masked_fill(~keep[:, None, None, :], float("-inf"))
            record.variant[self.name] = base_scores.softmax(dim=-1) @ value

        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        return leave_attention(attn, out, residual, shape)


def cross_attention_names(unet) -> list[str]:
    """Names (as in ``unet.attn_processors``) of every cross-attention processor."""
    return [name for name in unet.attn_processors if name.endswith("attn2.processor")]


def install_capture(unet, record: AttentionRecord) -> dict:
    """Put capture processors on every ``attn2`` of ``unet``; returns the previous processors."""
    previous = dict(unet.attn_processors)
    processors = {
        name: CrossAttentionCapture(name.removesuffix(".processor"), record) if name.endswith("attn2.processor") else proc
        for name, proc in previous.items()
    }
    unet.set_attn_processor(processors)
    return previous


@contextmanager
def capturing(unet, record: AttentionRecord):
    """Capture processors on ``unet`` for the block's duration, the old ones restored after."""
    previous = install_capture(unet, record)
    try:
        yield record
    finally:
        unet.set_attn_processor(previous)
