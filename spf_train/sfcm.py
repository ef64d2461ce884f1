"""The Semantic-Aware Fine Control Map (Eq. 8-10), computed without gradient.

- Soft map (Eq. 8): where the response path's noise prediction departs from the reference
  path's, channel-mean absolute difference, min-max normalised per sample, at latent size.
- Phrase maps (Eq. 9): c_b split into phrases; for each, the response path's cross-attention
  probability on the phrase's tokens, averaged over heads, tokens and layers, upsampled to
  the latent size and min-max normalised.
- Relevance (Eq. 10): w_i = 1 - max(cos(CLIP_T(p_i), CLIP_T(c_t)), 0) **(choice:
  relevance="one-minus-cos")**: a phrase unrelated to the target gets a large weight in the
  exclusion map X = sum_i w_i A_i / sum_i w_i, so its region is removed from the map; a
  related one keeps it. M = norm(M_soft ⊙ (1 - X)). Dividing by sum_i w_i is the
  reconstruction's reading of Eq. 10 **(choice: exclusion_norm="weight-sum")**; ``none``
  keeps the plain weighted sum, clipped at 1.

The functions on tensors are pure; ``phrase_token_spans`` needs the pipeline's tokenizer.
"""

from __future__ import annotations

import math
import re
from typing import Sequence

import torch
import torch.nn.functional as F

_EPS = 1e-8


def minmax_normalise(maps: torch.Tensor) -> torch.Tensor:
    """Per-sample min-max to [0, 1] over all but the first dimension (a constant map gives 0)."""
    flat = maps.flatten(1)
    low = flat.min(dim=1, keepdim=True).values
    high = flat.max(dim=1, keepdim=True).values
    return ((flat - low) / (high - low).clamp_min(_EPS)).view_as(maps)


def soft_map(eps_response: torch.Tensor, eps_reference: torch.Tensor) -> torch.Tensor:
    """Eq. 8: (B, C, h, w) noise predictions -> (B, h, w) in [0, 1]."""
    return minmax_normalise((eps_response - eps_reference).abs().float().mean(dim=1))


def layer_grid(n_tokens: int, latent_hw: tuple[int, int]) -> tuple[int, int]:
    """The (height, width) of a layer with ``n_tokens`` spatial positions, same aspect as the latent."""
    h, w = latent_hw
    factor = math.sqrt(h * w / n_tokens)
    grid = (round(h / factor), round(w / factor))
    if grid[0] * grid[1] != n_tokens:
        raise ValueError(f"{n_tokens} positions do not form a grid of the latent's aspect {h}x{w}")
    return grid


def resize_map_to_tokens(maps: torch.Tensor, n_tokens: int, mode: str = "bilinear") -> torch.Tensor:
    """(B, h, w) map -> (B, n_tokens) at a layer's grid (**choice** ``mask_resize``)."""
    grid = layer_grid(n_tokens, tuple(maps.shape[-2:]))
    kwargs = {"align_corners": False} if mode == "bilinear" else {}
    resized = F.interpolate(maps[:, None].float(), size=grid, mode=mode, **kwargs)
    return resized.flatten(1)


def split_phrases(base_caption: str, mode: str = "comma-and") -> list[tuple[int, int]]:
    """Character spans (start, end) of the phrases of c_b (**choice** ``phrase_split``)."""
    if mode == "comma-and":
        separator = re.compile(r",|\band\b")
    elif mode == "comma":
        separator = re.compile(r",")
    else:
        raise ValueError(f"unknown phrase_split {mode!r}; choose comma-and or comma")
    spans, start = [], 0
    for match in list(separator.finditer(base_caption)) + [None]:
        end = match.start() if match else len(base_caption)
        text = base_caption[start:end]
        stripped = text.strip()
        if stripped:
            left = start + (len(text) - len(text.lstrip()))
            spans.append((left, left + len(stripped)))
        if match:
            start = match.end()
    return spans


def phrase_token_spans(tokenizer, base_caption: str, mode: str = "comma-and") -> list[tuple[str, range]]:
    """Each phrase of c_b with its token positions in the encoded prompt (position 0 is BOS).

    CLIP's tokenizer splits words and punctuation before BPE, so the tokens of a prefix of c_b
    are a prefix of c_b's tokens: counting the tokens of ``c_b[:start]`` gives a phrase's start.
    """
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False).input_ids) if text.strip() else 0

    out = []
    for start, end in split_phrases(base_caption, mode):
        first, last = 1 + count(base_caption[:start]), 1 + count(base_caption[:end])
        if last > first:
            out.append((base_caption[start:end], range(first, last)))
    return out


def phrase_map(probs: Sequence[torch.Tensor], tokens: Sequence[int], latent_hw: tuple[int, int]) -> torch.Tensor:
    """Eq. 9 for one phrase: ``probs`` are per-layer (B, N_l, T) head-mean probabilities."""
    index = torch.as_tensor(list(tokens), device=probs[0].device)
    total = None
    for p in probs:
        grid = layer_grid(p.shape[1], latent_hw)
        layer = p.float().index_select(-1, index).mean(dim=-1).view(p.shape[0], 1, *grid)
        layer = F.interpolate(layer, size=latent_hw, mode="bilinear", align_corners=False)[:, 0]
        total = layer if total is None else total + layer
    return minmax_normalise(total / len(probs))


def relevance_weights(phrase_embeddings: torch.Tensor, target_embedding: torch.Tensor) -> torch.Tensor:
    """Eq. 10: (N, D) phrase and (D,) target CLIP text embeddings -> (N,) w_i = 1 - max(cos, 0)."""
    cos = F.cosine_similarity(phrase_embeddings.float(), target_embedding.float()[None], dim=-1)
    return 1.0 - cos.clamp_min(0.0)


EXCLUSION_NORMS = ("weight-sum", "none")


def exclusion_map(phrase_maps: torch.Tensor, weights: torch.Tensor, norm: str = "weight-sum") -> torch.Tensor:
    """X for (N, h, w) maps: sum_i w_i A_i / sum_i w_i (``weight-sum``) or sum_i w_i A_i
    clipped at 1 (``none``: with several unrelated phrases the sum passes 1, and 1 - X must
    stay a weight); zeros when every weight is 0."""
    if norm not in EXCLUSION_NORMS:
        raise ValueError(f"unknown exclusion_norm {norm!r}; choose {' or '.join(EXCLUSION_NORMS)}")
    total = weights.sum()
    if phrase_maps.shape[0] == 0 or total <= 0:
        return torch.zeros(phrase_maps.shape[1:], device=phrase_maps.device)
    weighted = (weights[:, None, None] * phrase_maps).sum(dim=0)
    return weighted / total if norm == "weight-sum" else weighted.clamp(max=1.0)


def sfcm_from_maps(soft: torch.Tensor, phrase_maps: torch.Tensor, weights: torch.Tensor,
                   norm: str = "weight-sum") -> torch.Tensor:
    """One sample's SFCM: (h, w) soft map, (N, h, w) phrase maps, (N,) weights -> (h, w) in [0, 1]."""
    return minmax_normalise((soft * (1.0 - exclusion_map(phrase_maps, weights, norm)))[None])[0]


class SfcmBuilder:
    """Computes a batch's SFCM from the two paths' outputs (Eq. 8-10), without gradient.

    ``text_embed`` maps a list of strings to CLIP text embeddings (N, D); the maps' pieces
    are kept in ``last`` (soft map, phrases, phrase maps, weights) for diagnostics.
    """

    def __init__(self, tokenizer, text_embed, phrase_split: str = "comma-and", exclusion_norm: str = "weight-sum"):
        self.tokenizer = tokenizer
        self.text_embed = text_embed
        self.phrase_split = phrase_split
        self.exclusion_norm = exclusion_norm
        self.last: list[dict] = []
        self._spans: dict[str, list] = {}

    def spans(self, base_caption: str):
        if base_caption not in self._spans:
            self._spans[base_caption] = phrase_token_spans(self.tokenizer, base_caption, self.phrase_split)
        return self._spans[base_caption]

    @torch.no_grad()
    def __call__(self, eps_response, eps_reference, probs: Sequence[torch.Tensor],
                 base_captions: Sequence[str], target_captions: Sequence[str]) -> torch.Tensor:
        soft = soft_map(eps_response, eps_reference)
        latent_hw = tuple(soft.shape[-2:])
        maps, self.last = [], []
        for b, (base, target) in enumerate(zip(base_captions, target_captions)):
            spans = self.spans(base)
            sample_probs = [p[b:b + 1] for p in probs]
            if spans:
                pmaps = torch.stack([phrase_map(sample_probs, tokens, latent_hw)[0] for _, tokens in spans])
                embeddings = self.text_embed([text for text, _ in spans] + [target]).to(pmaps.device)
                weights = relevance_weights(embeddings[:-1], embeddings[-1])
            else:
                pmaps = soft.new_zeros((0, *latent_hw))
                weights = soft.new_zeros((0,))
            maps.append(sfcm_from_maps(soft[b], pmaps, weights.to(pmaps.device), self.exclusion_norm))
            self.last.append({"soft": soft[b], "phrases": [t for t, _ in spans], "phrase_maps": pmaps, "weights": weights})
        return torch.stack(maps)
