"""Stage 2: dual-path contrastive learning (METHOD.md Sec. 3.2-3.4, Eq. 3-15).

Both paths see the same noised latent z_t of the ground-truth image and the same t:
- reference path: the frozen original UNet on tau(c_b), run without gradient;
- response path: the trainable UNet (from a stage-1 folder, or the original weights for the
  "only stage 2" row) on tau(c).
Capture processors record A^l, h^l (both paths) and P^l (response path) at every
cross-attention layer; the SFCM M (no gradient) weights the alignment losses L_attn and
L_unet by (1 - M); L_re (or L_clip) goes through the frozen VAE decoder and CLIP vision tower.
Total (Eq. 15): L = w.diff·L_diff + w.attn·L_attn + w.unet·L_unet + w.re·L_re, each ablation
switch of :class:`~spf_train.config.Stage2Config` dropping its term.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn.functional as F

from spf_bench.core.errors import SpfError

from spf_train.capture import AttentionRecord, install_capture
from spf_train.clip_guide import ClipGuide
from spf_train.config import Stage2Config
from spf_train.config_options import literal_choices
from spf_train.data import batch_indices, collate
from spf_train.diffusion_task import DiffusionTask
from spf_train.accelerator import weight_dtype
from spf_train.loop import LossHook, LossTerm, StepContext, train
from spf_train.losses import (
    attention_alignment_loss,
    diffusion_loss,
    difference_vector_loss,
    direct_clip_loss,
    hidden_alignment_loss,
)
from spf_train.models import (
    base_token_counts,
    diffusion_target,
    encode_text,
    freeze,
    load_clip,
    load_unet,
    predicted_clean_latents,
)
from spf_train.data import MASK_FIELD
from spf_train.sfcm import SfcmBuilder, resize_map_to_tokens
from spf_train.trainable import merge_into_weights, select_stage2_trainable
from spf_train.xattn_adapter import save_xattn_adapter, strip_xattn_adapters

# Every named (choice) and its implemented values, read from the config's Literal types.
STAGE2_CHOICES = literal_choices(Stage2Config)
RE_DECODE_SIZES = STAGE2_CHOICES["re_decode_size"]


INIT_FROM_MISSING = (
    "Stage 2 needs --init-from: a stage-1 output folder (SPF-Portrait: stage 1, then stage 2), or the word "
    "'original' to start from the original weights (Tab. 5's 'only stage 2' variant, which the paper reports "
    "as clearly worse)."
)


def require_init_from(config: Stage2Config) -> None:
    """Stage 2 never picks its starting weights silently: the two choices are different methods."""
    if not str(config.init_from).strip():
        raise SpfError(INIT_FROM_MISSING)


def check_stage2_choices(config: Stage2Config) -> None:
    """Every named (choice) must hold one of its implemented values."""
    for name, allowed in STAGE2_CHOICES.items():
        value = getattr(config, name)
        if value not in allowed:
            raise SpfError(f"{name} must be one of {', '.join(allowed)}, not '{value}'.")
    if config.no_sfcm and config.mask_variant != "sfcm":
        raise SpfError(f"no_sfcm (M = 0) and mask_variant={config.mask_variant} both choose M; give only one.")


def check_oracle_masks(config: Stage2Config, dataset) -> None:
    """The oracle variant needs every training image's ground-truth target region."""
    if config.mask_variant == "oracle" and not getattr(dataset, "has_target_masks", False):
        where = getattr(dataset, "folder", config.data_dir)
        raise SpfError(f"mask_variant=oracle needs a ground-truth target mask ('{MASK_FIELD}') for every image, "
                       f"which only the synthetic world's training sets record, and {where} lacks them.")


class DualPathTask(DiffusionTask):
    """The stage-2 training task; ``pipe`` holds the original (reference) weights."""

    def __init__(self, config: Stage2Config, pipe=None, dataset=None, clip=None, response_unet=None, report=print):
        if response_unet is None:
            require_init_from(config)
        check_stage2_choices(config)
        self._given_response_unet = response_unet
        super().__init__(config, pipe=pipe, dataset=dataset, report=report)
        check_oracle_masks(config, self.dataset)
        # The SFCM is built for the method and for its inversion; the other variants set M directly.
        builds_sfcm = not config.no_sfcm and config.mask_variant in ("sfcm", "inverted")
        needs_clip = not (config.no_re and not builds_sfcm)
        self.clip = ClipGuide(clip if clip is not None else load_clip(config.clip_model)) if needs_clip else None
        self.sfcm = SfcmBuilder(self.tokenizer, self.clip.text_embeddings, config.phrase_split,
                                config.exclusion_norm) if builds_sfcm else None
        self.reference_record = AttentionRecord()
        self.response_record = AttentionRecord(want_probs=builds_sfcm)
        install_capture(self.reference_unet, self.reference_record)
        install_capture(self.unet, self.response_record)
        if config.trainable == "adapter-xattn":
            self._params = select_stage2_trainable(self.unet, config.trainable)
        self._gt_embeddings: dict[tuple[int, int], torch.Tensor] = {}
        self.last_map: torch.Tensor | None = None

    # ------------------------------------------------------------------ what trains

    def select_trainable(self) -> list[torch.nn.Parameter]:
        # Called by DiffusionTask.__init__: the pipeline's UNet becomes the frozen reference
        # and a second UNet the response path, of which only the chosen part trains.
        self.reference_unet = freeze(self.pipe.unet)
        self.unet = self._initial_response_unet()
        if self.config.trainable == "adapter-xattn":
            self.unet.requires_grad_(False)
            return []  # the adapter wraps the capture processors, so it is added after them
        return select_stage2_trainable(self.unet, self.config.trainable, self.config.lora_rank)

    def _initial_response_unet(self):
        if self._given_response_unet is not None:
            return self._given_response_unet
        if self.config.init_from == "original":
            return copy.deepcopy(self.reference_unet)
        return load_unet(self.config.init_from)

    def setup(self, accelerator, model) -> None:
        super().setup(accelerator, model)
        device, dtype = accelerator.device, weight_dtype(accelerator)
        self.reference_unet.to(device=device, dtype=dtype)
        if self.clip is not None:
            self.clip.to(device, dtype)

    # ------------------------------------------------------------------ one micro-batch

    def compute_losses(self, batch: dict, generator: torch.Generator, step: int):
        cfg, weights = self.config, self.config.weights
        latents, noise, timesteps, noisy = self.noised(batch, generator)
        full = encode_text(self.tokenizer, self.text_encoder, batch["caption"])
        base = encode_text(self.tokenizer, self.text_encoder, batch["base_caption"])
        n_base = base_token_counts(self.tokenizer, batch["base_caption"]).to(noisy.device)

        for record in (self.reference_record, self.response_record):
            record.clear()
            record.base_lengths = n_base
        with torch.no_grad():
            eps_reference = self.reference_unet(noisy, timesteps, base.features).sample
        model = getattr(self, "model", self.unet)
        eps_response = model(noisy, timesteps, full.features).sample
        target = diffusion_target(self.noise_scheduler, latents, noise, timesteps)

        terms = {"diff": LossTerm(diffusion_loss(eps_response, target), weights.diff)}
        if not (cfg.no_attn and cfg.no_unet):
            terms.update(self.alignment_terms(eps_response, eps_reference, batch))
        if not cfg.no_re:
            terms.update(self.response_terms(noisy, eps_response, timesteps, batch))
        context = StepContext(batch=batch, step=step, latents=latents, noise=noise, noisy_latents=noisy,
                              timesteps=timesteps, encoder_hidden_states=full.features, noise_pred=eps_response,
                              target=target, record=self.response_record,
                              extras={"eps_reference": eps_reference, "sfcm": self.last_map})
        return terms, context

    def control_map(self, eps_response, eps_reference, batch) -> torch.Tensor:
        """M at latent size (B, h, w): the SFCM, or the variant ``mask_variant`` names, or
        zeros for the ``no_sfcm`` ablation."""
        shape, device = (eps_response.shape[0], *eps_response.shape[-2:]), eps_response.device
        variant = self.config.mask_variant
        if self.config.no_sfcm:
            return torch.zeros(shape, device=device)
        if variant == "ones":
            return torch.ones(shape, device=device)
        if variant == "oracle":
            # The image-size region, area-pooled: a latent pixel's M is the share of it the
            # target covers, so a small part (glasses) is not widened to whole latent pixels.
            mask = batch[MASK_FIELD][:, None].float()
            return F.interpolate(mask, size=shape[-2:], mode="area")[:, 0].to(device)
        probs = list(self.response_record.probs.values())
        sfcm = self.sfcm(eps_response, eps_reference, probs, batch["base_caption"], batch["target_caption"])
        return 1.0 - sfcm if variant == "inverted" else sfcm

    def alignment_terms(self, eps_response, eps_reference, batch) -> dict[str, LossTerm]:
        cfg, weights = self.config, self.config.weights
        res, ref = self.response_record, self.reference_record
        self.last_map = self.control_map(eps_response.detach(), eps_reference, batch)
        layers = list(res.hidden)
        masks = [resize_map_to_tokens(self.last_map, res.hidden[name].shape[1], cfg.mask_resize) for name in layers]
        terms = {}
        if not cfg.no_attn:
            terms["attn"] = LossTerm(attention_alignment_loss([res.variant[n] for n in layers], [ref.variant[n] for n in layers], masks), weights.attn)
        if not cfg.no_unet:
            terms["unet"] = LossTerm(hidden_alignment_loss([res.hidden[n] for n in layers], [ref.hidden[n] for n in layers], masks), weights.unet)
        return terms

    def decode_prediction(self, noisy, eps_response, timesteps) -> torch.Tensor:
        """x0_hat = D(z0_hat / s) (Eq. 12), at the size ``re_decode_size`` names."""
        z0 = predicted_clean_latents(self.noise_scheduler, noisy, eps_response, timesteps) / self.vae.config.scaling_factor
        if self.config.re_decode_size == "clip":
            factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
            side = self.clip.image_size // factor
            z0 = F.interpolate(z0, size=(side, side), mode="bilinear", align_corners=False)
        return self.vae.decode(z0.to(self.vae.dtype)).sample

    def ground_truth_embeddings(self, batch) -> torch.Tensor:
        """CLIP_I(x_gt), cached per training item: both networks are frozen."""
        keys = [(id(self.dataset), int(i)) for i in batch["index"]]
        missing = [i for i, key in enumerate(keys) if key not in self._gt_embeddings]
        if missing:
            with torch.no_grad():
                pixels = batch["pixels"][missing].to(self.clip.device)
                for i, emb in zip(missing, self.clip.image_embeddings(pixels)):
                    self._gt_embeddings[keys[i]] = emb
        return torch.stack([self._gt_embeddings[key] for key in keys])

    def response_terms(self, noisy, eps_response, timesteps, batch) -> dict[str, LossTerm]:
        image = self.decode_prediction(noisy, eps_response, timesteps)
        predicted = self.clip.image_embeddings(image)
        target_text = self.clip.text_embeddings(batch["target_caption"]).to(predicted.device)
        if self.config.direct_clip:
            return {"clip": LossTerm(direct_clip_loss(predicted, target_text), self.config.weights.re)}
        gt = self.ground_truth_embeddings(batch).to(predicted.device)
        return {"re": LossTerm(difference_vector_loss(predicted, gt, target_text), self.config.weights.re)}

    # ------------------------------------------------------------------ evaluation and output

    @torch.no_grad()
    def evaluate(self, dataset, seed: int = 0, num_batches: int = 2) -> dict[str, float]:
        """Mean of every loss term on fixed batches of ``dataset`` with fixed noise, for the
        response UNet as it is now (to compare a checkpoint before and after training)."""
        original, self.dataset = self.dataset, dataset
        cached, self.cached_latents = self.cached_latents, None  # the cache indexes the training set
        totals: dict[str, float] = {}
        try:
            for i in range(num_batches):
                ids = batch_indices(len(dataset), self.config.train_batch_size, i, seed)
                batch = collate([dataset[j] for j in ids])
                generator = torch.Generator("cpu").manual_seed(seed * 7919 + i)
                terms, _ = self.compute_losses(batch, generator, 0)
                for name, term in terms.items():
                    totals[name] = totals.get(name, 0.0) + float(term.value) / num_batches
        finally:
            self.dataset, self.cached_latents = original, cached
        return totals

    def save_output(self, folder: Path, model) -> None:
        if self.config.trainable == "adapter-xattn":
            # the adapter cannot be folded into the weights: it is saved beside the pipeline
            folder.mkdir(parents=True, exist_ok=True)
            save_xattn_adapter(model, folder)
            strip_xattn_adapters(model)
        merge_into_weights(model)
        self.fresh_pipeline(model).save_pretrained(str(folder), safe_serialization=True)


def train_stage2(config: Stage2Config, pipe=None, dataset=None, clip=None, hooks: tuple[LossHook, ...] = (), report=print) -> Path:
    return train(DualPathTask(config, pipe=pipe, dataset=dataset, clip=clip, report=report), hooks=hooks, report=report)
