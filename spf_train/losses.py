"""The losses of SPF-Portrait, as pure functions of tensors (METHOD.md, Eq. 1, 6, 7, 11-14).

Nothing here knows about models: the training steps capture the tensors and call these.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def diffusion_loss(noise_pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 1: L_diff = mean ||eps - eps_theta(z_t, t, tau(c))||^2 (computed in fp32)."""
    return F.mse_loss(noise_pred.float(), target.float(), reduction="mean")


def _masked_squared_error(response: torch.Tensor, reference: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """mean((keep ⊙ (response - reference))^2 ...) with ``keep`` (B, N) broadcast over the
    positions axis of ``response`` (axis -2: (B, N, C) or (B, heads, N, d))."""
    diff = (response.float() - reference.float()) ** 2
    weight = keep.float()
    if diff.ndim == 4:
        weight = weight[:, None, :, None]
    elif diff.ndim == 3:
        weight = weight[:, :, None]
    else:
        raise ValueError(f"expected (B, N, C) or (B, heads, N, d) features, got shape {tuple(diff.shape)}")
    return (weight * diff).mean()


def masked_alignment_loss(
    response: Sequence[torch.Tensor], reference: Sequence[torch.Tensor], masks: Sequence[torch.Tensor],
) -> torch.Tensor:
    """sum_l mean((1 - M_l) ⊙ (response_l - reference_l)^2), M_l given per layer as (B, N_l).

    Eq. 6 with attention features A^l (L_attn), Eq. 7 with hidden states h^l (L_unet), both
    weighted by the SFCM as in Eq. 11. The reference is treated as a constant.
    """
    if not (len(response) == len(reference) == len(masks)):
        raise ValueError("response, reference and masks must have one entry per layer")
    total = response[0].new_zeros((), dtype=torch.float32)
    for res, ref, mask in zip(response, reference, masks):
        total = total + _masked_squared_error(res, ref.detach(), 1.0 - mask)
    return total


def attention_alignment_loss(a_response, a_reference, masks) -> torch.Tensor:
    """L_attn (Eq. 6 / 11) on per-layer (B, heads, N, d) variant attention features."""
    return masked_alignment_loss(a_response, a_reference, masks)


def hidden_alignment_loss(h_response, h_reference, masks) -> torch.Tensor:
    """L_unet (Eq. 7 / 11) on per-layer (B, N, C) hidden states entering cross-attention."""
    return masked_alignment_loss(h_response, h_reference, masks)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x.float(), dim=-1)


def difference_vector_loss(image_pred: torch.Tensor, image_gt: torch.Tensor, text_target: torch.Tensor) -> torch.Tensor:
    """Eq. 12-13: L_re = mean(1 - cos(d_pred, d_gt)), d = u(CLIP_I(x)) - u(CLIP_T(c_t)).

    Inputs are raw CLIP embeddings (B, D); ``image_gt`` and ``text_target`` act as constants.
    """
    text = _unit(text_target.detach())
    d_pred = _unit(image_pred) - text
    d_gt = _unit(image_gt.detach()) - text
    return (1.0 - F.cosine_similarity(d_pred, d_gt, dim=-1, eps=1e-8)).mean()


def direct_clip_loss(image_pred: torch.Tensor, text_target: torch.Tensor) -> torch.Tensor:
    """Eq. 14 (ablation): L_clip = mean(1 - cos(u(CLIP_I(x0_hat)), u(CLIP_T(c_t))))."""
    return (1.0 - F.cosine_similarity(_unit(image_pred), _unit(text_target.detach()), dim=-1)).mean()
