"""MPS's model: LAION's CLIP-H (transformers' ``CLIPModel``) and the condition transformer.

The architecture is written here so that the released overall checkpoint's state dict
(``model.*`` for CLIP, ``cross_model.layers.N.{0,1}.fn.*`` for the condition transformer)
loads into it unchanged; :mod:`spf_bench.zoo.networks.mps` builds and loads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from spf_bench.core.errors import WeightsCorruptError

# Prompt tokens whose normalised similarity to the condition is at most this are hidden from
# the image tokens; the value of the authors' evaluation scripts.
MASK_THRESHOLD = 0.3


@dataclass(frozen=True)
class ConditionArch:
    """Sizes of the condition transformer; the defaults are the released model's."""

    dim: int = 1024  # CLIP's projection width: it reads projected tokens
    layer_num: int = 4
    heads: int = 16
    dim_head: int = 64
    ff_mult: int = 4

    @classmethod
    def from_json(cls, path: Path) -> "ConditionArch":
        try:
            data = json.loads(path.read_text())
            unknown = sorted(set(data) - {f.name for f in fields(cls)})
            if unknown:
                raise KeyError(unknown[0])
            return cls(**data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WeightsCorruptError(f"{path} is not an MPS condition-transformer description ({type(exc).__name__}: {exc}).") from None


TINY_ARCH = ConditionArch(dim=32, layer_num=2, heads=2, dim_head=16, ff_mult=2)


# ----------------------------------------------------------------------------- architecture

class LayerNormNoBias(nn.Module):
    """Layer norm with a learnt gain and a fixed zero bias.

    The bias is a (persistent) buffer rather than absent because the released state dict
    stores it as ``norm.bias``.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.register_buffer("bias", torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.weight, self.bias)


class SwiGLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = x.chunk(2, dim=-1)
        return F.silu(gate) * value


class Residual(nn.Module):
    """``fn(x) + x``; a wrapper module because the state-dict keys go through ``.fn``."""

    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor, *args) -> torch.Tensor:
        return self.fn(x, *args) + x


class RotaryFrequencies(nn.Module):
    """Rotary position angles; ``inv_freq`` is stored in the checkpoint, so it is a buffer."""

    def __init__(self, dim_head: int):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, dim_head, 2).float() / dim_head)))

    def forward(self, length: int) -> torch.Tensor:
        positions = torch.arange(length, device=self.inv_freq.device, dtype=self.inv_freq.dtype)
        angles = torch.outer(positions, self.inv_freq)
        return torch.cat((angles, angles), dim=-1)


def _rotate(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return x * angles.cos() + torch.cat((-second, first), dim=-1) * angles.sin()


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    batch, length, _ = x.shape
    return x.view(batch, length, heads, -1).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    batch, heads, length, dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * dim)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    # Multi-query attention: many query heads (b, h, i, d) share one key/value head (b, j, d).
    logits = torch.einsum("bhid,bjd->bhij", q, k)
    if bias is not None:
        logits = logits + bias
    return torch.einsum("bhij,bjd->bhid", logits.softmax(dim=-1), v)


class ConditionCrossAttention(nn.Module):
    """Image tokens attend to prompt tokens (masked by the condition), plus a parallel SwiGLU
    feed-forward of the image tokens."""

    def __init__(self, arch: ConditionArch):
        super().__init__()
        inner = arch.heads * arch.dim_head
        ff_inner = arch.ff_mult * arch.dim
        self.heads = arch.heads
        self.scale = arch.dim_head ** -0.5
        self.norm = LayerNormNoBias(arch.dim)
        self.context_norm = nn.Identity()
        self.to_q = nn.Linear(arch.dim, inner, bias=False)
        self.to_kv = nn.Linear(arch.dim, arch.dim_head * 2, bias=False)
        self.to_out = nn.Linear(inner, arch.dim, bias=False)
        self.ff = nn.Sequential(nn.Linear(arch.dim, ff_inner * 2, bias=False), SwiGLU(), nn.Linear(ff_inner, arch.dim, bias=False))

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        q = _split_heads(self.to_q(x), self.heads) * self.scale
        k, v = self.to_kv(self.context_norm(context)).chunk(2, dim=-1)
        out = _attend(q, k, v, mask.unsqueeze(1))
        return self.to_out(_merge_heads(out)) + self.ff(x)


class ParallelSelfAttention(nn.Module):
    """Self-attention with rotary positions and a SwiGLU feed-forward computed side by side
    from one fused projection."""

    def __init__(self, arch: ConditionArch):
        super().__init__()
        ff_inner = arch.ff_mult * arch.dim
        self.heads = arch.heads
        self.scale = arch.dim_head ** -0.5
        self.split_sizes = (arch.heads * arch.dim_head, arch.dim_head, arch.dim_head, ff_inner * 2)
        self.norm = LayerNormNoBias(arch.dim)
        self.rotary_emb = RotaryFrequencies(arch.dim_head)
        self.fused_attn_ff_proj = nn.Linear(arch.dim, sum(self.split_sizes), bias=False)
        self.attn_out = nn.Linear(arch.heads * arch.dim_head, arch.dim, bias=False)
        self.ff_out = nn.Sequential(SwiGLU(), nn.Linear(ff_inner, arch.dim, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        q, k, v, ff = self.fused_attn_ff_proj(x).split(self.split_sizes, dim=-1)
        angles = self.rotary_emb(x.shape[1])
        q = _rotate(_split_heads(q, self.heads), angles) * self.scale
        k = _rotate(k, angles)
        out = _attend(q, k, v, None)
        return self.attn_out(_merge_heads(out)) + self.ff_out(ff)


class ConditionTransformer(nn.Module):
    def __init__(self, arch: ConditionArch):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([Residual(ConditionCrossAttention(arch)), Residual(ParallelSelfAttention(arch))])
            for _ in range(arch.layer_num)
        )

    def forward(self, image_tokens: torch.Tensor, text_tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = image_tokens
        for cross, self_block in self.layers:
            x = self_block(cross(x, text_tokens, mask))
        return x


class MpsModel(nn.Module):
    """CLIP (``model``) plus the condition transformer (``cross_model``), as in the release."""

    def __init__(self, clip_config, arch: ConditionArch):
        super().__init__()
        from transformers import CLIPModel

        self.model = CLIPModel(clip_config)
        self.cross_model = ConditionTransformer(arch)

    def text_tokens(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected features of every prompt token, and of the pooled (end) token."""
        out = self.model.text_model(input_ids=input_ids)
        project = self.model.text_projection
        return project(out.last_hidden_state), project(out.pooler_output)

    def image_tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # Every token of the last layer, projected without CLIP's post-layernorm: the
        # condition transformer was trained on exactly these.
        hidden = self.model.vision_model(pixel_values=pixel_values).last_hidden_state
        return self.model.visual_projection(hidden)

    def condition_mask(self, prompt_tokens: torch.Tensor, condition_tokens: torch.Tensor) -> torch.Tensor:
        """Additive mask (b, 1, prompt length): 0 for prompt tokens related to the condition."""
        similarity = torch.einsum("bid,bjd->bji", prompt_tokens, condition_tokens).amax(dim=1, keepdim=True)
        # Normalised per sample; the authors normalise by the batch maximum but score one image
        # at a time, which is the same thing.
        similarity = similarity / similarity.amax(dim=(1, 2), keepdim=True)
        zero = torch.zeros((), dtype=prompt_tokens.dtype, device=prompt_tokens.device)
        return torch.where(similarity > MASK_THRESHOLD, zero, torch.full_like(zero, float("-inf")))

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor, condition_ids: torch.Tensor) -> torch.Tensor:
        """MPS of each image for the prompt at the same position under the condition."""
        prompt_tokens, prompt_pooled = self.text_tokens(input_ids)
        condition_tokens, _ = self.text_tokens(condition_ids)
        image = self.image_tokens(pixel_values)
        mask = self.condition_mask(prompt_tokens, condition_tokens).expand(-1, image.shape[1], -1)
        image_feature = self.cross_model(image, prompt_tokens, mask)[:, 0]
        image_feature = image_feature / image_feature.norm(dim=-1, keepdim=True)
        text_feature = prompt_pooled / prompt_pooled.norm(dim=-1, keepdim=True)
        return self.model.logit_scale.exp() * (image_feature * text_feature).sum(dim=-1)
