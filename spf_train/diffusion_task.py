"""The L_diff training task (Eq. 1) that stage 1 and the LoRA / AdaLoRA baselines share.

Subclasses choose what trains (:meth:`DiffusionTask.select_trainable`) and how the result is
saved (:meth:`DiffusionTask.save_output`); the forward pass, latents and noise are here.
"""

from __future__ import annotations

from pathlib import Path

import torch

from spf_train.capture import AttentionRecord, install_capture
from spf_train.config import TrainConfig
from spf_train.data import PortraitDataset
from spf_train.latent_cache import build_latent_cache, cache_key
from spf_train.accelerator import weight_dtype
from spf_train.loop import LossTerm, StepContext
from spf_train.losses import diffusion_loss
from spf_train.models import (
    diffusion_target,
    encode_text,
    freeze,
    latent_distribution,
    load_pipeline,
    native_resolution,
    noise_and_timesteps,
    sample_latents,
    training_scheduler,
)
from spf_train.trainable import train_full


class DiffusionTask:
    """Fine-tune a UNet with L_diff on (image, full caption c = c_b ⊕ c_t) pairs."""

    def __init__(self, config: TrainConfig, pipe=None, dataset=None, report=print):
        self.config = config
        self.report = report
        self.pipe = pipe if pipe is not None else load_pipeline(config.base_model)
        self.unet = self.pipe.unet
        self.vae = freeze(self.pipe.vae)
        self.text_encoder = freeze(self.pipe.text_encoder)
        self.tokenizer = self.pipe.tokenizer
        self.noise_scheduler = training_scheduler(self.pipe)
        self.resolution = config.resolution or native_resolution(self.pipe)
        self.dataset = dataset if dataset is not None else PortraitDataset(
            config.data_dir, self.resolution, skip_bad=config.skip_bad, report=report, tokenizer=self.tokenizer)
        self.capture_attention = False  # a loss hook needing attention maps sets this (see loop.py)
        self.record: AttentionRecord | None = None
        self.cached_latents: tuple[torch.Tensor, torch.Tensor] | None = None
        # New adapter weights (LoRA, AdaLoRA) are drawn from the run's seed rather than the
        # process's global RNG: every process of a launch then starts from the same weights,
        # and a rerun from the same config starts where the first did.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self._params = self.select_trainable()

    # ------------------------------------------------------------------ what trains

    def select_trainable(self) -> list[torch.nn.Parameter]:
        return train_full(self.unet)

    def trainable_module(self) -> torch.nn.Module:
        return self.unet

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return self._params

    # ------------------------------------------------------------------ set-up

    def setup(self, accelerator, model) -> None:
        self.model = model
        device, dtype = accelerator.device, weight_dtype(accelerator)
        self.vae.to(device=device, dtype=dtype)
        self.text_encoder.to(device=device, dtype=dtype)
        if self.capture_attention:
            self.record = AttentionRecord(want_probs=True)
            install_capture(self.unet, self.record)
        if self.config.latent_cache:
            key = cache_key(self.config.base_model, self.resolution, self.dataset)
            path = Path(self.config.output_dir) / "latent_cache" / f"{key}.safetensors"
            self.cached_latents = build_latent_cache(self.vae, self.dataset, path, self.config.train_batch_size)

    # ------------------------------------------------------------------ one micro-batch

    def latents(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        """z0 = s·E(x), sampled from the encoder's Gaussian (or from its cached parameters)."""
        scaling = self.vae.config.scaling_factor
        if self.cached_latents is not None:
            mean, logvar = (t[batch["index"]].to(self.vae.device) for t in self.cached_latents)
        else:
            with torch.no_grad():
                mean, logvar = latent_distribution(self.vae, batch["pixels"])
        return sample_latents(mean, logvar, scaling, generator)

    def noised(self, batch: dict, generator: torch.Generator):
        latents = self.latents(batch, generator)
        noise, timesteps = noise_and_timesteps(latents, self.noise_scheduler.config.num_train_timesteps, generator)
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        return latents, noise, timesteps, noisy

    def compute_losses(self, batch: dict, generator: torch.Generator, step: int):
        latents, noise, timesteps, noisy = self.noised(batch, generator)
        text = encode_text(self.tokenizer, self.text_encoder, batch["caption"])
        if self.record is not None:
            self.record.clear()
        model = getattr(self, "model", self.unet)
        noise_pred = model(noisy, timesteps, text.features).sample
        target = diffusion_target(self.noise_scheduler, latents, noise, timesteps)
        terms = {"diff": LossTerm(diffusion_loss(noise_pred, target), 1.0)}
        context = StepContext(batch=batch, step=step, latents=latents, noise=noise, noisy_latents=noisy,
                              timesteps=timesteps, encoder_hidden_states=text.features, noise_pred=noise_pred,
                              target=target, record=self.record)
        return terms, context

    def after_optimizer_step(self, step: int) -> None:
        pass

    # ------------------------------------------------------------------ output

    def fresh_pipeline(self, unet):
        """The base pipeline with ``unet`` in it. Frozen parts cast to half precision for
        training are re-read in fp32, so the saved folder keeps their original weights."""
        from diffusers import StableDiffusionPipeline

        frozen_cast = any(m.dtype != torch.float32 for m in (self.vae, self.text_encoder))
        base = load_pipeline(self.config.base_model) if frozen_cast else self.pipe
        return StableDiffusionPipeline(**{**base.components, "unet": unet.to(dtype=torch.float32)})

    def save_output(self, folder: Path, model) -> None:
        self.fresh_pipeline(model).save_pretrained(str(folder), safe_serialization=True)
