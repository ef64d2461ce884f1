"""Training the diffusion world: first the VAE, then the UNet with its text encoder.

The VAE learns to reconstruct renders (L1 + MSE, a very light KL term, as SD's VAE is
nearly deterministic); the training set is then encoded once into latents, scaled to unit
variance as SD's ``scaling_factor`` does. The UNet and the text encoder train jointly on
(latent, caption) pairs with SD1.5's noise schedule and epsilon objective; one caption in
ten is dropped to the empty string so classifier-free guidance works. An exponential moving
average of both is what ships.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spf_bench.world import diffusion_models as dm
from spf_bench.world.captions import compose_caption
from spf_bench.world.dataset import PortraitSet
from spf_bench.world.loop import step_generator, train_steps
from spf_bench.world.recipe import Recipe

KL_WEIGHT = 1e-6
CAPTION_DROPOUT = 0.1
EMA_DECAY = 0.999


def _pixels(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def train_vae(recipe: Recipe, data: PortraitSet, work: Path, log) -> nn.Module:
    stage = recipe.vae
    torch.manual_seed(stage.seed)
    vae = dm.build_vae(recipe.size)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=stage.lr, weight_decay=0.0)

    def step(i: int) -> torch.Tensor:
        vae.train()
        gen = step_generator(stage.seed, i)
        x = _pixels(data.images[torch.randint(0, len(data), (stage.batch,), generator=gen).numpy()])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            posterior = vae.encode(x).latent_dist
            z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen)
            recon = vae.decode(z).sample.float()
        kl = posterior.kl().mean() / x[0].numel()
        return (recon - x).abs().mean() + ((recon - x) ** 2).mean() + KL_WEIGHT * kl

    figures = train_steps("vae", {"vae": vae}, optimizer, step, stage.steps, work / "vae.ckpt", stage.lr, log=log)
    vae.eval()
    log(f"vae trained: {figures}")
    return vae


@torch.no_grad()
def encode_set(vae, data: PortraitSet, batch: int = 256, bfloat16: bool = True) -> torch.Tensor:
    """The encoder's latent means of every portrait (unscaled, float32 out)."""
    out = []
    for i in range(0, len(data), batch):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            out.append(vae.encode(_pixels(data.images[i : i + batch])).latent_dist.mean.float())
    return torch.cat(out)


def _latents(recipe: Recipe, data: PortraitSet, work: Path, log) -> tuple[nn.Module, torch.Tensor, float]:
    vae_file = work / "vae_final.pt"
    if vae_file.is_file():
        vae = dm.build_vae(recipe.size)
        vae.load_state_dict(torch.load(vae_file, weights_only=True))
        vae.eval()
    else:
        vae = train_vae(recipe, data, work, log)
        torch.save(vae.state_dict(), vae_file)
    cache = work / "latents.pt"
    if cache.is_file():
        latents = torch.load(cache, weights_only=True)
    else:
        latents = encode_set(vae, data)
        torch.save(latents, cache)
    scale = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=scale)
    log(f"latents {tuple(latents.shape)}, scaling factor {scale:.4f}")
    return vae, latents * scale, scale


def _edges(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]


def decoder_training(vae, latents: torch.Tensor, images, stage, bfloat16: bool):
    """The optimizer, step function and trained modules of a decoder refinement: the decoder
    and post_quant_conv learn to draw ``images`` from their fixed ``latents`` with pixel and
    edge losses (the edge term keeps small parts sharp). ``bfloat16``: autocast the decode."""
    params = [*vae.decoder.parameters(), *vae.post_quant_conv.parameters()]
    optimizer = torch.optim.AdamW(params, lr=stage.lr, weight_decay=0.0)

    def step(i: int) -> torch.Tensor:
        vae.decoder.train()
        gen = step_generator(stage.seed, i)
        idx = torch.randint(0, len(images), (stage.batch,), generator=gen)
        x = _pixels(images[idx.numpy()])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            recon = vae.decode(latents[idx]).sample.float()
        edge = sum((a - b).abs().mean() for a, b in zip(_edges(recon), _edges(x)))
        return (recon - x).abs().mean() + ((recon - x) ** 2).mean() + edge

    return optimizer, step, {"decoder": vae.decoder, "post_quant_conv": vae.post_quant_conv}


def refine_decoder(recipe: Recipe, data: PortraitSet, work: Path, log) -> Path:
    """Train the decoder further on the fixed encoder's latents; ``work/decoder_final.pt``.

    Pixel losses alone leave a mouth of a few pixels blurred into the skin; an L1 term on
    image gradients keeps the edges of small parts. The encoder is frozen, so the latents
    the UNet was trained on stay exactly what they were.
    """
    final = work / "decoder_final.pt"
    if final.is_file():
        return final
    stage = recipe.decoder
    torch.manual_seed(stage.seed)
    vae = dm.build_vae(recipe.size)
    vae.load_state_dict(torch.load(work / "vae_final.pt", weights_only=True))
    vae.encoder.requires_grad_(False)
    vae.quant_conv.requires_grad_(False)
    latents = torch.load(work / "latents.pt", weights_only=True)  # unscaled posterior means
    optimizer, step, modules = decoder_training(vae, latents, data.images, stage, bfloat16=True)
    figures = train_steps("decoder", modules, optimizer, step, stage.steps, work / "decoder.ckpt", stage.lr, log=log)
    log(f"decoder refined: {figures}")
    torch.save(vae.state_dict(), final)
    return final


def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p, 1.0 - decay)


def train(recipe: Recipe, data: PortraitSet, work: Path, out: Path, log) -> dict:
    vae, latents, scale = _latents(recipe, data, work, log)
    stage = recipe.diffusion
    torch.manual_seed(stage.seed)
    unet, text = dm.build_unet(recipe.size), dm.build_text_encoder()
    # The token table trains too: with its rows frozen at their seeded random values the
    # encoder learned the colour words (background, shirt, hair) but left "hat", "glasses",
    # "beard" and the skin tones nearly unread (their phrases moved its output a quarter as
    # much as a shirt colour did), and the UNet drew those at their prior rate.
    ema_unet, ema_text = copy.deepcopy(unet), copy.deepcopy(text)
    tok = dm.tokenizer(work / "tokenizer")
    scheduler = dm.noise_scheduler()
    alphas = scheduler.alphas_cumprod
    trainable = [p for p in (*unet.parameters(), *text.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=stage.lr, weight_decay=0.01)

    def step(i: int) -> torch.Tensor:
        if i > 0:  # the previous step's update, folded into the average
            decay = min(EMA_DECAY, (1 + i) / (10 + i))
            _ema_update(ema_unet, unet, decay)
            _ema_update(ema_text, text, decay)
        unet.train(), text.train()
        gen = step_generator(stage.seed, i)
        idx = torch.randint(0, len(data), (stage.batch,), generator=gen)
        rng = np.random.default_rng([stage.seed, i])
        captions = ["" if rng.random() < CAPTION_DROPOUT else compose_caption(data.attributes(int(j)), rng) for j in idx]
        ids = tok(captions, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids
        z0 = latents[idx]
        noise = torch.randn(z0.shape, generator=gen)
        t = torch.randint(0, len(alphas), (len(idx),), generator=gen)
        a = alphas[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1 - a).sqrt() * noise
        # float32: on these sizes bf16 autocast saves nothing on the CPU and costs precision.
        pred = unet(zt, t, encoder_hidden_states=text(ids)[0]).sample
        return nn.functional.mse_loss(pred, noise)

    modules = {"unet": unet, "text": text, "ema_unet": ema_unet, "ema_text": ema_text}
    figures = train_steps("diffusion", modules, optimizer, step, stage.steps, work / "diffusion.ckpt", stage.lr, log=log, every=100)
    refine_decoder(recipe, data, work, log)
    export_checkpoint(recipe, work, out)
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in (("unet", unet), ("text_encoder", text), ("vae", vae))}
    return {**figures, "scaling_factor": scale, "parameters": params}


def export_checkpoint(recipe: Recipe, work: Path, out: Path) -> int:
    """Write the pipeline folder from the latest checkpoint's averaged weights; return its step.

    Also how a training still under way is looked at: the checkpoint is read, not changed.
    """
    vae = dm.build_vae(recipe.size)
    refined = work / "decoder_final.pt"
    vae.load_state_dict(torch.load(refined if refined.is_file() else work / "vae_final.pt", weights_only=True))
    latents = torch.load(work / "latents.pt", weights_only=True)
    vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
    state = torch.load(work / "diffusion.ckpt", map_location="cpu", weights_only=True)
    unet, text = dm.build_unet(recipe.size), dm.build_text_encoder()
    unet.load_state_dict(state["modules"]["ema_unet"])
    text.load_state_dict(state["modules"]["ema_text"])
    out.mkdir(parents=True, exist_ok=True)
    dm.save_pipeline(vae.eval(), text.eval(), unet.eval(), dm.tokenizer(work / "tokenizer"), out)
    return int(state["step"])
