"""Where the SFCM switches stage 2's alignment off, measured on the pollution lab's data.

For training images of a lab set (every image shows the target and the spurious attribute),
each image is noised at fixed timesteps exactly as a stage-2 step noises it (z0 sampled from
the VAE's Gaussian, DDPM ``add_noise`` of the pipeline's own training scheduler), both paths
run with the capture processors (response: ``checkpoint``'s UNet on tau(c); reference: the
original UNet on tau(c_b); text encoder, tokenizer and VAE from the original pipeline), and
:class:`spf_train.sfcm.SfcmBuilder` builds the maps. Reported per timestep and ground-truth
region (target, spurious, rest, from :func:`spf_bench.world.masks.attribute_masks` at the
image size, area-pooled to the latent size so the three regions partition every latent
pixel with fractional weights): the region mean of M_soft (Eq. 8), of the exclusion map X
(Eq. 10), of M and of the alignment weight (1 - M), and the share of all (1 - M) weight that
falls in each region beside the region's share of the area.

Each row's identity comes from the set's metadata (``write_set`` records it), so the
masks are those of exactly the rendered portrait.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from spf_bench.core.errors import SpfError

from spf_bench.world.sets import Correlation
from spf_bench.world.masks import attribute_masks

REGIONS = ("target", "spurious", "rest")


def _rows(set_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (set_dir / "metadata.jsonl").read_text().splitlines() if line.strip()]


def _identity(row: dict, set_dir: Path) -> int:
    if "identity" not in row:
        raise SpfError(f"{set_dir / 'metadata.jsonl'} has no identity for {row.get('file_name')}; "
                       "write the set again with this version's lab (write_set records identities).")
    return int(row["identity"])


def region_weights(set_dir: str | Path, latent_hw: tuple[int, int], corr: Correlation = Correlation(),
                   n_images: int | None = None) -> dict[str, torch.Tensor]:
    """{region: (n, h, w) fractional weights}: target, spurious (minus target) and rest masks at
    the image size, area-pooled to the latent size; the three sum to 1 at every latent pixel."""
    set_dir = Path(set_dir)
    rows = _rows(set_dir)[:n_images]
    identities = [_identity(row, set_dir) for row in rows]
    out = {name: [] for name in REGIONS}
    for row, identity in zip(rows, identities):
        with Image.open(set_dir / row["file_name"]) as image:
            size = image.size[0]
        masks = attribute_masks(row["attributes"], identity, size)
        target = masks[corr.target]
        spurious = masks[corr.spurious] & ~target
        rest = ~(target | spurious)
        for name, mask in zip(REGIONS, (target, spurious, rest)):
            pooled = F.adaptive_avg_pool2d(torch.from_numpy(mask.astype(np.float32))[None, None], latent_hw)[0, 0]
            out[name].append(pooled)
    return {name: torch.stack(maps) for name, maps in out.items()}


@torch.no_grad()
def sfcm_by_region(set_dir, checkpoint, base_model, clip_model, timesteps=(200, 500, 800), n_images: int = 32,
                   seed: int = 0, corr: Correlation = Correlation(),
                   phrase_split: str = "comma-and") -> dict:
    """Region means of M_soft, X, M and (1 - M), and the share of (1 - M) per region, per timestep.

    ``checkpoint`` is the response path's pipeline (a folder or zoo source); passing
    ``base_model`` itself is the control where M_soft is the pure caption difference. The
    noise (z0 sample and eps) depends only on ``seed``, so two checkpoints see the same z_t.
    """
    from spf_train.capture import AttentionRecord, capturing
    from spf_train.clip_guide import ClipGuide
    from spf_train.data import PortraitDataset, collate
    from spf_train.models import (
        base_token_counts,
        encode_text,
        latent_distribution,
        load_clip,
        load_pipeline,
        load_unet,
        native_resolution,
        sample_latents,
        training_scheduler,
    )
    from spf_train.sfcm import SfcmBuilder, exclusion_map

    original = load_pipeline(str(base_model))
    reference_unet = original.unet.eval()
    response_unet = reference_unet if str(checkpoint) == str(base_model) else load_unet(str(checkpoint)).eval()
    tokenizer, text_encoder, vae = original.tokenizer, original.text_encoder, original.vae
    scheduler = training_scheduler(original)
    builder = SfcmBuilder(tokenizer, ClipGuide(load_clip(str(clip_model))).text_embeddings, phrase_split)

    dataset = PortraitDataset(set_dir, native_resolution(original))
    n = min(n_images, len(dataset))
    batch = collate([dataset[i] for i in range(n)])
    full = encode_text(tokenizer, text_encoder, batch["caption"]).features
    base = encode_text(tokenizer, text_encoder, batch["base_caption"]).features
    n_base = base_token_counts(tokenizer, batch["base_caption"])

    generator = torch.Generator("cpu").manual_seed(seed)
    mean, logvar = latent_distribution(vae, batch["pixels"])
    latents = sample_latents(mean, logvar, vae.config.scaling_factor, generator)
    noise = torch.randn(latents.shape, generator=generator, dtype=torch.float32)
    regions = region_weights(set_dir, tuple(latents.shape[-2:]), corr, n)

    result = {"checkpoint": str(checkpoint), "base_model": str(base_model), "n_images": n, "seed": seed,
              "latent_hw": list(latents.shape[-2:]),
              "area_share": {r: float(w.sum() / sum(v.sum() for v in regions.values())) for r, w in regions.items()},
              "timesteps": {}}
    for timestep in timesteps:
        t = torch.full((n,), int(timestep), dtype=torch.long)
        noisy = scheduler.add_noise(latents, noise, t)
        reference_record = AttentionRecord(base_lengths=n_base)
        response_record = AttentionRecord(base_lengths=n_base, want_probs=True)
        with capturing(reference_unet, reference_record):
            eps_reference = reference_unet(noisy, t, base).sample
        with capturing(response_unet, response_record):
            eps_response = response_unet(noisy, t, full).sample
        sfcm = builder(eps_response, eps_reference, list(response_record.probs.values()),
                       batch["base_caption"], batch["target_caption"])
        soft = torch.stack([part["soft"] for part in builder.last])
        excl = torch.stack([exclusion_map(part["phrase_maps"], part["weights"].to(part["phrase_maps"].device))
                            for part in builder.last])
        raw = (eps_response - eps_reference).abs().float().mean(dim=1)
        maps = {"M_soft": soft, "X": excl, "M": sfcm, "1-M": 1.0 - sfcm, "raw_diff": raw}
        row = {}
        for region, w in regions.items():
            row[region] = {name: float((m * w).sum() / w.sum().clamp_min(1e-8)) for name, m in maps.items()}
            row[region]["share_of_1-M"] = float(((1.0 - sfcm) * w).sum() / (1.0 - sfcm).sum().clamp_min(1e-8))
            per_image = (sfcm * w).sum(dim=(1, 2)) / w.sum(dim=(1, 2)).clamp_min(1e-8)
            row[region]["M_per_image_p90"] = float(per_image.quantile(0.9))
        result["timesteps"][int(timestep)] = row
    return result


def format_table(results: dict[str, dict]) -> str:
    """A markdown table of :func:`sfcm_by_region` results keyed by a label (e.g. naive / original)."""
    lines = ["| response | t | region | area share | M_soft | X | M | M p90 over images | 1-M | share of (1-M) | raw |eps diff| |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, res in results.items():
        for t, row in res["timesteps"].items():
            for region in REGIONS:
                v = row[region]
                lines.append(f"| {label} | {t} | {region} | {res['area_share'][region]:.3f} | {v['M_soft']:.3f} | "
                             f"{v['X']:.3f} | {v['M']:.3f} | {v['M_per_image_p90']:.3f} | {v['1-M']:.3f} | {v['share_of_1-M']:.3f} | {v['raw_diff']:.4f} |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - the lab's one-off measurement
    import sys

    from spf_bench.zoo import synth_source

    set_dir, checkpoint = sys.argv[1], sys.argv[2]
    sd, clip = synth_source.folder("sd15"), synth_source.folder("clip")
    out = {"naive": sfcm_by_region(set_dir, checkpoint, sd, clip), "original": sfcm_by_region(set_dir, sd, sd, clip)}
    print(json.dumps(out, indent=1))
    print(format_table(out))
