"""TokenCompose's grounding losses, as pure functions of attention maps and masks.

TokenCompose (Wang et al., "TokenCompose: Text-to-Image Diffusion with Token-level
Supervision", CVPR 2024, Sec. 3.2) adds two terms to the diffusion loss, computed on the
cross-attention probabilities ``A`` of grounded phrases:

- the *token loss* (Eq. 4 of the paper), for every grounded token ``i`` with binary mask
  ``M_i`` resized to the layer's grid::

      L_token = mean_i ( 1 - sum_u A_{i,u} M_{i,u} / sum_u A_{i,u} )^2

  It is 0 when a token's attention lies entirely inside its mask and 1, its maximum, when
  it lies entirely outside. The inner ratio is taken per attention head and averaged over
  heads before squaring (as the authors' release averages over the batch-times-heads axis);
  each phrase's value is the mean over its tokens, the loss the mean over phrases, summed
  over the attention layers of one (place, resolution) group.
- the *pixel loss* (Eq. 5), a binary cross-entropy between the phrase's attention (summed
  over its tokens, averaged over heads and over the layers of the group) and its mask::

      L_pixel = mean_phrases BCE( sum_{k in phrase} mean_{heads, layers} A_k , M )

Total: ``L = L_diff + lambda_token * sum_groups L_token + lambda_pixel * sum_groups L_pixel``,
with the paper's 1e-3 and 5e-5 (its training script's ``token_loss_scale`` and
``pixel_loss_scale``).

Shapes used throughout (B batch, P phrases per sample, T text tokens, U = h*w pixels):

- ``probs``: ``(B, heads, U, T)`` cross-attention probabilities of one layer;
- ``selector``: ``(B, P, T)`` float, 1 where token ``k`` belongs to phrase ``p``;
- ``masks``: ``(B, P, h, w)`` binary masks already at the layer's grid (see :func:`masks_at`);
- ``valid``: ``(B, P)`` bool, False for padding phrases (samples have different counts).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Attention probabilities summed over a phrase can reach exactly 0 or 1; clamping keeps the
# BCE finite, as torch's BCELoss does internally by clamping its log at -100.
_BCE_EPS = 1e-6


def masks_at(masks: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize ``(B, P, H, W)`` masks to a layer's grid, binary: a cell is inside when any of its
    pixels is.

    The authors resize bilinearly and keep every cell ``> 0``, i.e. a cell touched by the mask
    counts as inside; adaptive max pooling states that exactly, so a small part (glasses, an
    earring) keeps its cell even at the 8x8 layers, and no cell outside the mask is added.
    """
    b, p, h, w = masks.shape
    flat = (masks.reshape(b * p, 1, h, w) > 0).float()
    if (h, w) != (height, width):
        if height <= h and width <= w:
            flat = F.adaptive_max_pool2d(flat, (height, width))
        else:
            flat = F.interpolate(flat, size=(height, width), mode="nearest")
    return flat.reshape(b, p, height, width)


def inside_fraction(probs: torch.Tensor, selector: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Per (sample, phrase, token): the share of the token's attention inside the phrase's mask.

    Returns ``(B, P, T)``, the ratio ``sum_u A M / sum_u A`` averaged over heads; entries of
    tokens outside a phrase are meaningless and are ignored by the callers through ``selector``.
    """
    b, heads, u, t = probs.shape
    flat_masks = masks.reshape(b, masks.shape[1], u).to(probs.dtype)
    inside = torch.einsum("bhuk,bpu->bhpk", probs, flat_masks)
    total = probs.sum(dim=2).unsqueeze(2).clamp_min(torch.finfo(probs.dtype).tiny)
    return (inside / total).mean(dim=1)


def _phrase_mean(values: torch.Tensor, selector: torch.Tensor) -> torch.Tensor:
    # Mean over each phrase's own tokens; a phrase with no token (padding) gets 0 and is
    # dropped later by `valid`.
    counts = selector.sum(dim=-1).clamp_min(1.0)
    return (values * selector).sum(dim=-1) / counts


def _masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    weights = valid.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


def token_loss(probs: torch.Tensor, selector: torch.Tensor, masks: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """TokenCompose's token loss (Eq. 4) of one layer; a scalar in [0, 1]."""
    fraction = inside_fraction(probs, selector, masks)
    per_phrase = _phrase_mean((1.0 - fraction) ** 2, selector)
    return _masked_mean(per_phrase, valid)


def pixel_loss(mean_probs: torch.Tensor, selector: torch.Tensor, masks: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """TokenCompose's pixel loss (Eq. 5): BCE between phrase attention and mask.

    ``mean_probs`` is ``(B, U, T)``: the probabilities of a group of layers averaged over heads
    and layers. The phrase's attention at a pixel is the sum over its tokens.
    """
    b, u, t = mean_probs.shape
    phrase_attn = torch.einsum("buk,bpk->bpu", mean_probs, selector.to(mean_probs.dtype))
    phrase_attn = phrase_attn.clamp(_BCE_EPS, 1.0 - _BCE_EPS)
    target = masks.reshape(b, masks.shape[1], u).to(mean_probs.dtype)
    bce = F.binary_cross_entropy(phrase_attn, target, reduction="none").mean(dim=-1)
    return _masked_mean(bce, valid)


def group_losses(
    layer_probs: list[torch.Tensor], selector: torch.Tensor, masks: torch.Tensor, valid: torch.Tensor,
    height: int, width: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token and pixel loss of one group of layers sharing a grid ``height x width``.

    The token loss is summed over the group's layers and the pixel loss computed on their
    average, as in the authors' release (their groups are ``mid_8``, ``up_16``, ``up_32``,
    ``up_64`` for SD1.x at 512 px).
    """
    grid_masks = masks_at(masks, height, width)
    tok = sum(token_loss(p, selector, grid_masks, valid) for p in layer_probs)
    mean_probs = torch.stack([p.mean(dim=1) for p in layer_probs]).mean(dim=0)
    pix = pixel_loss(mean_probs, selector, grid_masks, valid)
    return tok, pix


def grounding_mass(
    layer_probs: list[torch.Tensor], selector: torch.Tensor, masks: torch.Tensor, valid: torch.Tensor,
    grids: list[tuple[int, int]],
) -> torch.Tensor:
    """Mean share of grounded tokens' attention that falls inside their masks, in [0, 1].

    Averaged over layers, phrases (their tokens) and samples: the quantity the token loss
    pushes up, reported to check that training grounds the phrases on held-out data.
    """
    values = []
    for probs, (h, w) in zip(layer_probs, grids):
        fraction = inside_fraction(probs, selector, masks_at(masks, h, w))
        values.append(_masked_mean(_phrase_mean(fraction, selector), valid))
    return torch.stack(values).mean()
