"""The world's Stable-Diffusion-shaped models: their configs and how they become one pipeline.

The VAE maps 32 px portraits to 16x16x4 latents (two resolution levels, a 2x factor: at
4x, 8x8 latents, a mouth or a pair of glasses covers about one latent pixel and the UNet
never learned to draw them on request), the text encoder is a small ``CLIPTextModel`` read
through CLIP's real tokenizer, and the UNet is an ``UNet2DConditionModel`` with
cross-attention at 16 and 8 px, so every code path that touches SD's parts (attention
processors, LoRA targets, the SFCM) runs unchanged.
"""

from __future__ import annotations

from pathlib import Path

import torch


LATENT_FACTOR = 2  # pixels per latent pixel along each side


def vae_config(size: int) -> dict:
    return dict(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=size,
        block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, norm_num_groups=8,
    )


def unet_config(size: int) -> dict:
    return dict(
        sample_size=size // LATENT_FACTOR, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64, 128),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=128, attention_head_dim=4, norm_num_groups=16,
    )


TEXT_CONFIG = dict(
    vocab_size=49408, hidden_size=128, intermediate_size=512, num_hidden_layers=3,
    num_attention_heads=4, max_position_embeddings=77, projection_dim=128, hidden_act="quick_gelu",
    bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
)


def build_vae(size: int):
    from diffusers import AutoencoderKL

    return AutoencoderKL(**vae_config(size))


def build_unet(size: int):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**unet_config(size))


def build_text_encoder():
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))


def tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    from spf_bench.zoo.tokenizer import write_clip_tokenizer

    if not (folder / "vocab.json").is_file():
        write_clip_tokenizer(folder)
    return CLIPTokenizer.from_pretrained(str(folder))


def noise_scheduler():
    from diffusers import DDPMScheduler

    from spf_bench.zoo.networks.sd15 import SD15_SCHEDULER

    # Training uses SD1.5's own betas, so the folder's PNDM sampler (and any other the suite
    # picks) walks the schedule the UNet learned.
    cfg = {k: v for k, v in SD15_SCHEDULER.items() if k in ("beta_start", "beta_end", "beta_schedule", "num_train_timesteps")}
    return DDPMScheduler(**cfg, prediction_type="epsilon", clip_sample=False)


def save_pipeline(vae, text_encoder, unet, tok, folder: Path, dtype: torch.dtype = torch.float16) -> None:
    """One diffusers Stable Diffusion folder, weights stored in ``dtype``."""
    import copy

    from diffusers import PNDMScheduler, StableDiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    from spf_bench.zoo.networks.sd15 import SD15_SCHEDULER, _strip_versions

    # Casting a copy to fp16 for storage draws a warning meant for inference-time casts.
    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        pipe = StableDiffusionPipeline(
            vae=copy.deepcopy(vae).to(dtype), text_encoder=copy.deepcopy(text_encoder).to(dtype), tokenizer=tok,
            unet=copy.deepcopy(unet).to(dtype), scheduler=PNDMScheduler(**SD15_SCHEDULER), safety_checker=None,
            feature_extractor=None, requires_safety_checker=False,
        )
    finally:
        diffusers_logging.set_verbosity(level)
    # The slow tokenizer's vocab.json and merges.txt first, as SD1.5's folder has them (the
    # zoo's layout checks for them); save_pretrained adds the fast tokenizer's file beside.
    from spf_bench.zoo.tokenizer import write_clip_tokenizer

    write_clip_tokenizer(folder / "tokenizer")
    pipe.save_pretrained(str(folder), safe_serialization=True)
    _strip_versions(folder)
