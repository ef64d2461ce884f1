"""Teaching the diffusion model's decoder to draw the novel attributes, and nothing else.

The VAE of the diffusion stage learnt from the known set only. Its encoder still separates
the novel attributes (a linear probe on its latents reads each at 0.95 or more), but its
decoder never had to reproduce them, so a round trip loses most earrings and hair streaks.
A fine-tuned UNet could then never show them, whatever the method. Here the decoder (and
``post_quant_conv``) trains further on the world set, on the frozen encoder's latent means,
with the loss of ``refine_decoder``; the encoder and ``quant_conv`` stay frozen, so the
latents the UNet and text encoder learnt on are unchanged and those two are copied byte for
byte: the diffusion model still never sees a novel attribute.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from spf_bench.core.atomic import atomic_path
from spf_bench.world.dataset import PortraitSet
from spf_bench.world.loop import train_steps
from spf_bench.world.recipe import Recipe
from spf_bench.world.train_diffusion import decoder_training, encode_set

VAE = "vae"
WEIGHTS = "diffusion_pytorch_model.safetensors"


def _round_trip_figures(vae, oracle) -> dict:
    from spf_bench.world.attributes import ATTRIBUTES, NOVEL_NAMES
    from spf_bench.world.capacity import vae_round_trip

    trip = vae_round_trip(vae, oracle)
    known = {a.name: round(trip[a.name]["agreement"], 3) for a in ATTRIBUTES if a.name not in NOVEL_NAMES}
    return {"novel_kept": {n: round(trip[n]["kept"], 3) for n in NOVEL_NAMES},
            "known_agreement": known, "known_agreement_min": min(known.values())}


def _load_vae(folder: Path):
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(str(folder)).float().eval()


def train(recipe: Recipe, data: PortraitSet, work: Path, start: Path, out: Path, oracle, log) -> dict:
    """Write ``out``: the pipeline in ``start`` with its VAE's decoder refined on ``data``."""
    stage = recipe.decoder_novel
    torch.manual_seed(stage.seed)
    vae = _load_vae(start / VAE)
    before = _round_trip_figures(vae, oracle)
    log(f"decoder_novel: round trip before {before['novel_kept']}")
    vae.encoder.requires_grad_(False)
    vae.quant_conv.requires_grad_(False)
    cache = work / "decoder_novel_latents.pt"  # the start's encoder is fixed within a work folder
    if cache.is_file():
        latents = torch.load(cache, weights_only=True)
    else:
        latents = encode_set(vae, data, bfloat16=False)  # float32, as the training below
        with atomic_path(cache) as tmp:
            torch.save(latents, tmp)
    # float32, as docs/synth.md's figures were measured (the decoder is small at 32 px)
    optimizer, step, modules = decoder_training(vae, latents, data.images, stage, bfloat16=False)
    figures = train_steps("decoder_novel", modules, optimizer, step, stage.steps, work / "decoder_novel.ckpt", stage.lr, log=log)
    vae.eval()
    _write_pipeline(start, out, vae)
    after = _round_trip_figures(_load_vae(out / VAE), oracle)  # as shipped (float16)
    log(f"decoder_novel: round trip after {after['novel_kept']}")
    return {**figures, "round_trip_before": before, "round_trip_after": after}


def _write_pipeline(start: Path, out: Path, vae) -> None:
    """Copy ``start`` to ``out`` with the refined VAE weights, staged beside ``out`` and renamed.

    Only the weights file is replaced: the VAE's config is the start's, byte for byte (a
    re-saved config would also record the folder it was loaded from)."""
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(start, staging)
    saved = staging / (VAE + ".new")
    vae.to(_stored_dtype(start / VAE)).save_pretrained(str(saved), safe_serialization=True)
    vae.float()
    os.replace(saved / WEIGHTS, staging / VAE / WEIGHTS)
    shutil.rmtree(saved)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)


def _stored_dtype(folder: Path) -> torch.dtype:
    """The dtype the start's VAE weights are stored in, so the copy ships the same way."""
    from safetensors import safe_open

    with safe_open(str(folder / WEIGHTS), framework="pt") as handle:
        return handle.get_tensor(next(iter(handle.keys()))).dtype
