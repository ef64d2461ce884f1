"""Loading the networks a run trains or consults, and the diffusion arithmetic they share.

A model is named by a zoo source (``tiny``, ``random``, ``pretrained``, ``synth``) or by a folder: a
diffusers SD1.x pipeline folder (for instance a stage-1 output) or an open_clip folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from spf_bench import zoo
from spf_bench.core.errors import SpfError

ZOO_SOURCES = ("tiny", "random", "pretrained", "synth")


def load_pipeline(spec: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
    """A StableDiffusionPipeline from a zoo source name or a diffusers folder."""
    if spec in ZOO_SOURCES:
        return zoo.load("sd15", source=spec, device=device, dtype=dtype)
    folder = Path(spec)
    if not (folder / "model_index.json").is_file():
        raise SpfError(f"{folder} is neither a weight source ({', '.join(ZOO_SOURCES)}) nor a diffusers pipeline folder with model_index.json.")
    from spf_bench.zoo.networks.sd15 import load_folder

    return load_folder(folder, torch.device(device), dtype)


def load_unet(spec: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
    """Only the UNet of :func:`load_pipeline`'s pipeline: a stage-1 folder read for its UNet
    alone skips the VAE, the text encoder and the tokenizer (most of a folder's load time)."""
    if spec in ZOO_SOURCES:
        return load_pipeline(spec, device, dtype).unet
    folder = Path(spec)
    if not (folder / "model_index.json").is_file():
        raise SpfError(f"{folder} is neither a weight source ({', '.join(ZOO_SOURCES)}) nor a diffusers pipeline folder with model_index.json.")
    from diffusers import UNet2DConditionModel

    from spf_bench.core.errors import WeightsCorruptError

    try:
        unet = UNet2DConditionModel.from_pretrained(str(folder), subfolder="unet", dtype=dtype,
                                                    local_files_only=True, use_safetensors=True)
    except (OSError, ValueError, EnvironmentError) as exc:
        line = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise WeightsCorruptError(f"The Stable Diffusion folder {folder} cannot be loaded ({line}).") from None
    return unet.to(device)


def load_clip(spec: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
    """An open_clip :class:`ClipBundle` from a zoo source name or an open_clip folder."""
    if spec in ZOO_SOURCES:
        return zoo.load("clip", source=spec, device=device, dtype=dtype)
    from spf_bench.zoo.networks.clip import load_folder

    return load_folder(Path(spec), torch.device(device), dtype)


def native_resolution(pipe) -> int:
    return int(pipe.unet.config.sample_size) * (2 ** (len(pipe.vae.config.block_out_channels) - 1))


def freeze(module: torch.nn.Module) -> torch.nn.Module:
    module.requires_grad_(False)
    module.eval()
    return module


@dataclass
class TextBatch:
    """Token ids and text-encoder features of a list of captions (padded to 77 tokens)."""

    input_ids: torch.Tensor
    features: torch.Tensor


def encode_text(tokenizer, text_encoder, captions: list[str]) -> TextBatch:
    """tau(c): the last hidden states of the CLIP text encoder, as SD conditions on."""
    ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids
    too_long = [c for c, n in zip(captions, (len(tokenizer(c).input_ids) for c in captions)) if n > tokenizer.model_max_length]
    if too_long:
        raise SpfError(f"The caption '{too_long[0][:60]}...' is over {tokenizer.model_max_length} tokens.")
    device = next(text_encoder.parameters()).device
    with torch.no_grad():
        features = text_encoder(ids.to(device))[0]
    return TextBatch(ids, features)


def base_token_counts(tokenizer, base_captions: list[str]) -> torch.Tensor:
    """n_b per caption: BOS plus the tokens of c_b, i.e. the length of f_b inside tau(c)."""
    return torch.tensor([1 + len(tokenizer(c, add_special_tokens=False).input_ids) for c in base_captions])


def latent_distribution(vae, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The VAE encoder's diagonal Gaussian (mean, logvar) for images in [-1, 1]."""
    dist = vae.encode(pixels.to(device=vae.device, dtype=vae.dtype)).latent_dist
    return dist.mean, dist.logvar


def sample_latents(mean: torch.Tensor, logvar: torch.Tensor, scaling: float, generator: torch.Generator) -> torch.Tensor:
    """z0 = s · (mean + std · n), the noise drawn from the run's own generator (on the CPU,
    so a run gives the same numbers whatever its device)."""
    noise = torch.randn(mean.shape, generator=generator, dtype=torch.float32).to(mean.device)
    return (mean.float() + torch.exp(0.5 * logvar.float()) * noise) * scaling


def noise_and_timesteps(latents: torch.Tensor, num_train_timesteps: int, generator: torch.Generator):
    noise = torch.randn(latents.shape, generator=generator, dtype=torch.float32).to(latents.device)
    timesteps = torch.randint(0, num_train_timesteps, (latents.shape[0],), generator=generator).to(latents.device)
    return noise, timesteps


def diffusion_target(noise_scheduler, latents, noise, timesteps) -> torch.Tensor:
    kind = noise_scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return noise_scheduler.get_velocity(latents, noise, timesteps)
    raise SpfError(f"The scheduler's prediction type '{kind}' is not supported; use epsilon or v_prediction.")


def predicted_clean_latents(noise_scheduler, noisy: torch.Tensor, noise_pred: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """One-step estimate z0_hat = (z_t - sqrt(1 - a_t) eps_hat) / sqrt(a_t) (Eq. 12)."""
    alphas = noise_scheduler.alphas_cumprod.to(device=noisy.device, dtype=torch.float32)[timesteps]
    alphas = alphas.view(-1, *([1] * (noisy.ndim - 1)))
    return (noisy.float() - (1 - alphas).sqrt() * noise_pred.float()) / alphas.sqrt()


def training_scheduler(pipe):
    """The DDPM noise scheduler of the pipeline's own betas, as SD training uses."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(pipe.scheduler.config)
