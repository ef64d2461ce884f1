"""Pictures of what the SFCM does (the paper's Fig. 3 / 4), for ``spf-train sfcm``.

A checkpoint generates the customized portrait from c = c_b ⊕ c_t; that image is noised to
one timestep and passed through both paths (checkpoint UNet on tau(c), original UNet on
tau(c_b)), exactly as in a stage-2 step. Written to the output folder: ``image.png``,
``soft_map.png`` (Eq. 8), ``phrase_<i>_<phrase>.png`` (Eq. 9), ``sfcm.png`` (Eq. 10), each map
as a heat map blended over the image, plus ``maps.json`` (phrases and relevance weights).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from spf_train.capture import AttentionRecord, capturing
from spf_train.clip_guide import ClipGuide
from spf_bench.core.captions import join_caption
from spf_train.data import image_to_tensor
from spf_train.models import encode_text, load_clip, load_pipeline, native_resolution, training_scheduler
from spf_train.sfcm import SfcmBuilder


def overlay(image: Image.Image, heat: torch.Tensor, alpha: float = 0.5) -> Image.Image:
    """A [0, 1] map, upsampled to the image and coloured (jet), blended over the image."""
    import matplotlib

    size = image.size[::-1]
    heat = F.interpolate(heat[None, None].float().cpu(), size=size, mode="bilinear", align_corners=False)[0, 0]
    colours = matplotlib.colormaps["jet"](heat.clamp(0, 1).numpy())[..., :3]
    blended = (1 - alpha) * np.asarray(image.convert("RGB"), dtype=np.float32) / 255 + alpha * colours
    return Image.fromarray((blended.clip(0, 1) * 255).astype(np.uint8))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "phrase"


@torch.no_grad()
def write_sfcm_diagnostics(
    checkpoint: str, base_caption: str, target_caption: str, out_dir: str | Path, base_model: str = "tiny",
    clip_model: str = "tiny", seed: int = 0, steps: int = 20, timestep: int = 500, phrase_split: str = "comma-and",
) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    response = load_pipeline(checkpoint)
    # the same weights need not be read twice: capture processors are removed after each pass
    reference = response if base_model == checkpoint else load_pipeline(base_model)
    caption = join_caption(base_caption, target_caption)
    generator = torch.Generator("cpu").manual_seed(seed)
    image = response(caption, num_inference_steps=steps, generator=generator, output_type="pil").images[0]

    pixels = image_to_tensor(image, native_resolution(response))[None]
    latents = response.vae.encode(pixels).latent_dist.mean * response.vae.config.scaling_factor
    scheduler = training_scheduler(response)
    noise = torch.randn(latents.shape, generator=generator)
    t = torch.tensor([timestep])
    noisy = scheduler.add_noise(latents, noise, t)

    full = encode_text(response.tokenizer, response.text_encoder, [caption])
    base = encode_text(reference.tokenizer, reference.text_encoder, [base_caption])
    response_record = AttentionRecord(want_probs=True)
    with capturing(reference.unet, AttentionRecord()):
        eps_reference = reference.unet(noisy, t, base.features).sample
    with capturing(response.unet, response_record):
        eps_response = response.unet(noisy, t, full.features).sample

    clip = ClipGuide(load_clip(clip_model))
    builder = SfcmBuilder(response.tokenizer, clip.text_embeddings, phrase_split)
    sfcm = builder(eps_response, eps_reference, list(response_record.probs.values()), [base_caption], [target_caption])[0]
    parts = builder.last[0]

    written = [out / "image.png"]
    image.save(written[0])
    maps = [("soft_map.png", parts["soft"])]
    maps += [(f"phrase_{i}_{_slug(p)}.png", m) for i, (p, m) in enumerate(zip(parts["phrases"], parts["phrase_maps"]))]
    maps.append(("sfcm.png", sfcm))
    for name, heat in maps:
        overlay(image, heat).save(out / name)
        written.append(out / name)
    summary = {
        "caption": caption, "base_caption": base_caption, "target_caption": target_caption, "seed": seed,
        "timestep": timestep, "phrases": parts["phrases"], "relevance_weights": [float(w) for w in parts["weights"]],
        "files": [p.name for p in written],
    }
    (out / "maps.json").write_text(json.dumps(summary, indent=2) + "\n")
    return written + [out / "maps.json"]
