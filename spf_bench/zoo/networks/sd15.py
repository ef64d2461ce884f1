"""Stable Diffusion 1.5 as a diffusers pipeline folder (UNet, VAE, CLIP text encoder,
tokenizer, scheduler).

Pretrained: ``SPF_WEIGHTS_DIR/sd15/`` is a diffusers folder such as
``stable-diffusion-v1-5/stable-diffusion-v1-5`` or the paper's ``SG161222/Realistic_Vision_V4.0``
(any SD1.x folder in diffusers format). Tiny: the same five components at toy width, still
with the real tokenizer, an 8x VAE and cross-attention in every UNet block, so every code
path that touches SD (attention processors, SFCM, LoRA targets) runs unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from spf_bench.core.errors import WeightsCorruptError
from spf_bench.zoo.registry import Network, hub_file, register
from spf_bench.zoo.tokenizer import write_clip_tokenizer

HUB_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
TINY_SEED = 1234
TINY_RESOLUTION = 64  # pixels; the tiny VAE downsamples 8x like SD's, so latents are 8x8

# Scheduler of SD1.5's folder (PNDM with SD's scaled-linear betas).
SD15_SCHEDULER = dict(
    beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
    set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1,
)

TINY_UNET = dict(
    sample_size=TINY_RESOLUTION // 8, in_channels=4, out_channels=4, layers_per_block=1,
    block_out_channels=(32, 64),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=32, attention_head_dim=4, norm_num_groups=16,
)
TINY_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, sample_size=TINY_RESOLUTION,
    block_out_channels=(16, 16, 32, 32),
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    layers_per_block=1, norm_num_groups=8,
)
TINY_TEXT = dict(
    vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
    num_attention_heads=2, max_position_embeddings=77, projection_dim=32,
    bos_token_id=49406, eos_token_id=49407, pad_token_id=49407, hidden_act="quick_gelu",
)

# The real SD1.5 component configs (for the `random` source).
SD15_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768, attention_head_dim=8,
)
SD15_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, sample_size=512,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    layers_per_block=2,
)
SD15_TEXT = dict(
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
    num_attention_heads=12, max_position_embeddings=77, projection_dim=768, hidden_act="quick_gelu",
    bos_token_id=49406, eos_token_id=49407, pad_token_id=1,
)


def _assemble(unet_cfg, vae_cfg, text_cfg, tokenizer_dir: Path | None, device, dtype):
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    unet = UNet2DConditionModel(**unet_cfg)
    vae = AutoencoderKL(**vae_cfg)
    text_encoder = CLIPTextModel(CLIPTextConfig(**text_cfg))
    if tokenizer_dir is None:
        import tempfile

        tokenizer_dir = Path(tempfile.mkdtemp(prefix="spf-tok-"))
        write_clip_tokenizer(tokenizer_dir)
    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir))
    pipe = StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
        scheduler=PNDMScheduler(**SD15_SCHEDULER), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )
    return pipe.to(device=device, dtype=dtype) if device.type != "meta" else pipe


def write_tiny(folder: Path) -> None:
    torch.manual_seed(TINY_SEED)
    tok_dir = folder / "tokenizer"
    write_clip_tokenizer(tok_dir)
    pipe = _assemble(TINY_UNET, TINY_VAE, TINY_TEXT, tok_dir, torch.device("cpu"), torch.float32)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    _strip_versions(folder)


def _strip_versions(folder: Path) -> None:
    # diffusers stamps its version into every config; drop it so that two builds with
    # different library patch releases still give byte-identical tiny files.
    for cfg in folder.rglob("*.json"):
        data = json.loads(cfg.read_text())
        if isinstance(data, dict) and "_diffusers_version" in data:
            data.pop("_diffusers_version")
            cfg.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def load_folder(folder: Path, device: torch.device, dtype: torch.dtype):
    from diffusers import StableDiffusionPipeline

    try:
        pipe = StableDiffusionPipeline.from_pretrained(
            str(folder), dtype=dtype, safety_checker=None, feature_extractor=None,
            requires_safety_checker=False, local_files_only=True, use_safetensors=True,
        )
    except (OSError, ValueError, EnvironmentError) as exc:
        line = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise WeightsCorruptError(f"The Stable Diffusion folder {folder} cannot be loaded ({line}).") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def build_random(device: torch.device, dtype: torch.dtype):
    torch.manual_seed(TINY_SEED)
    if device.type == "meta":
        with torch.device("meta"):
            return _assemble(SD15_UNET, SD15_VAE, SD15_TEXT, None, device, dtype)
    return _assemble(SD15_UNET, SD15_VAE, SD15_TEXT, None, device, dtype)


_FILES = tuple(
    hub_file(p, HUB_ID)
    for p in (
        "model_index.json",
        "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/config.json", "text_encoder/model.safetensors",
        "tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/tokenizer_config.json",
        "scheduler/scheduler_config.json",
    )
)

NETWORK = register(Network(
    name="sd15",
    summary="Stable Diffusion 1.5 pipeline (diffusers folder)",
    files=_FILES,
    load_folder=load_folder,
    write_tiny=write_tiny,
    build_random=build_random,
))
