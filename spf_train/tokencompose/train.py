"""TokenCompose: fine-tuning Stable Diffusion with token-level grounding losses (a Tab. 1 baseline).

Wang et al., "TokenCompose: Text-to-Image Diffusion with Token-level Supervision" (CVPR 2024).
The whole UNet is fine-tuned on (image, caption) pairs with

    L = L_diff + lambda_token * L_token + lambda_pixel * L_pixel

where ``L_diff`` is the usual noise-prediction MSE and the two grounding terms (defined in
:mod:`spf_train.tokencompose.losses`) act on the cross-attention probabilities of grounded
phrases against their segmentation masks. Defaults are the authors' release for SD1.4 at
512 px (``train/scripts/train.sh`` of github.com/mlpc-ucsd/TokenCompose):

- grounding layers: every cross-attention layer of the UNet's mid block and up blocks, i.e.
  their ``mid_8, up_16, up_32, up_64`` groups at 512 px (the down blocks are left out); the
  losses are computed per (place, resolution) group and summed over groups;
- ``lambda_token = 1e-3``, ``lambda_pixel = 5e-5``;
- AdamW (0.9, 0.999, weight decay 1e-2, eps 1e-8), learning rate 5e-6 constant, batch 1 with
  4 accumulation steps, gradient norm clipped at 1, 24,000 optimizer steps (checkpoints
  every 8,000);
- text encoder and VAE frozen, every UNet weight trains.

For portraits the grounded phrases are the subject and the target attribute (see
:mod:`spf_train.grounding`), with masks from the training set (:mod:`spf_train.tokencompose.data`);
the caption is the full customization prompt ``c_b ⊕ c_t``, as for the other fine-tuned
baselines, so the model is compared on the same data. The run goes through the shared
:mod:`spf_train.loop` (accumulation, mixed precision, checkpoints, resume, NaN checks).
Output: a diffusers pipeline folder plus ``spf_config.json``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from spf_bench.core.errors import SpfError

from spf_train.data import PortraitDataset, collate
from spf_train.diffusion_task import DiffusionTask
from spf_train.loop import LossTerm, StepContext
from spf_train.losses import diffusion_loss
from spf_train.models import (
    diffusion_target,
    encode_text,
    latent_distribution,
    native_resolution,
    noise_and_timesteps,
    sample_latents,
    training_scheduler,
)
from spf_train.tokencompose.capture import recording
from spf_train.tokencompose.config import TokenComposeConfig
from spf_train.tokencompose.data import PhraseGrounding
from spf_train.tokencompose.losses import group_losses, grounding_mass


# ----------------------------------------------------------------------------- losses of one batch

def unet_with_grounding(unet, noisy, timesteps, text, grounding: dict, places) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """UNet prediction, and the token and pixel losses summed over the grounding groups."""
    model = getattr(unet, "module", unet)  # processors live on the bare model under DDP
    with recording(model, places) as store:
        store.reset(tuple(noisy.shape[-2:]))
        pred = unet(noisy, timesteps, text).sample
    groups: dict[str, list] = {}
    for layer in store.layers:
        groups.setdefault(layer.group, []).append(layer)
    tok = pred.new_zeros((), dtype=torch.float32)
    pix = pred.new_zeros((), dtype=torch.float32)
    for layers in groups.values():
        t, p = group_losses([l.probs.float() for l in layers], grounding["selector"], grounding["masks"],
                            grounding["valid"], layers[0].height, layers[0].width)
        tok, pix = tok + t, pix + p
    return pred, tok, pix


class TokenComposeTask(DiffusionTask):
    """The L_diff task of :mod:`spf_train.diffusion_task` (whole UNet) plus the grounding losses."""

    def __init__(self, config: TokenComposeConfig, pipe=None, dataset=None, report=print):
        super().__init__(config, pipe=pipe, dataset=dataset, report=report)
        self.places = config.places()
        self.grounding = PhraseGrounding(config.data_dir, self.dataset.rows, self.tokenizer, self.resolution,
                                         config.sam_model, config.missing_grounding)

    def compute_losses(self, batch: dict, generator: torch.Generator, step: int):
        latents, noise, timesteps, noisy = self.noised(batch, generator)
        text = encode_text(self.tokenizer, self.text_encoder, batch["caption"]).features
        device = noisy.device
        grounding = {k: v.to(device) for k, v in self.grounding.batch(batch["index"]).items()}
        model = getattr(self, "model", self.unet)
        pred, tok, pix = unet_with_grounding(model, noisy, timesteps, text, grounding, self.places)
        target = diffusion_target(self.noise_scheduler, latents, noise, timesteps)
        terms = {
            "diff": LossTerm(diffusion_loss(pred, target), 1.0),
            "token": LossTerm(tok, self.config.token_loss_weight),
            "pixel": LossTerm(pix, self.config.pixel_loss_weight),
        }
        context = StepContext(batch=batch, step=step, latents=latents, noise=noise, noisy_latents=noisy,
                              timesteps=timesteps, encoder_hidden_states=text, noise_pred=pred, target=target)
        return terms, context


def train_tokencompose(config: TokenComposeConfig, pipe=None, report=print) -> Path:
    """Fine-tune with TokenCompose's losses; returns the output pipeline folder."""
    from spf_train.loop import train

    if not config.data_dir:
        raise SpfError("TokenCompose needs a grounded training set (--data).")
    return train(TokenComposeTask(config, pipe=pipe, report=report), report=report)


# ----------------------------------------------------------------------------- a diagnostic

@torch.no_grad()
def held_out_grounding(pipe, folder: str | Path, places=("mid", "up"), seed: int = 0, batch_size: int = 4,
                       resolution: int = 0, sam_model: str = "tiny") -> float:
    """Share of grounded tokens' attention inside their masks on the set in ``folder``.

    Latents, noise and timesteps come from ``seed`` alone, so values measured before and after
    training (or for two checkpoints) are comparable. This is what the token loss pushes up.
    """
    resolution = resolution or native_resolution(pipe)
    dataset = PortraitDataset(folder, resolution)
    grounding = PhraseGrounding(folder, dataset.rows, pipe.tokenizer, resolution, sam_model)
    scheduler = training_scheduler(pipe)
    generator = torch.Generator("cpu").manual_seed(seed)
    device = pipe.unet.device
    total, count = 0.0, 0
    for start in range(0, len(dataset), batch_size):
        batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        mean, logvar = latent_distribution(pipe.vae, batch["pixels"].to(device))
        latents = sample_latents(mean, logvar, pipe.vae.config.scaling_factor, generator)
        noise, timesteps = noise_and_timesteps(latents, scheduler.config.num_train_timesteps, generator)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        text = encode_text(pipe.tokenizer, pipe.text_encoder, batch["caption"]).features
        g = {k: v.to(device) for k, v in grounding.batch(batch["index"]).items()}
        with recording(pipe.unet, tuple(places)) as store:
            store.reset(tuple(noisy.shape[-2:]))
            pipe.unet(noisy, timesteps, text)
        mass = grounding_mass([l.probs.float() for l in store.layers], g["selector"], g["masks"], g["valid"],
                              [(l.height, l.width) for l in store.layers])
        total += float(mass) * len(batch["caption"])
        count += len(batch["caption"])
    return total / count
