"""CLIP as the response-enhancement loss and the SFCM's relevance scores use it.

Images enter as tensors in [-1, 1] and stay differentiable: they are resized to CLIP's input
size (antialiased, with the interpolation of the CLIP folder's preprocessing) and normalised
with its mean and std, the tensor twin of open_clip's preprocessing for square images (for
which every resize mode is the same). Text embeddings carry no gradient and are
cached per string, since the same captions recur every epoch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from spf_bench.zoo.networks.clip import OPENAI_MEAN, OPENAI_STD


class ClipGuide:
    def __init__(self, bundle):
        self.bundle = bundle
        self.model = bundle.model
        self.model.requires_grad_(False)
        self.model.eval()
        self.image_size = int(bundle.config["vision_cfg"]["image_size"])
        self._text_cache: dict[str, torch.Tensor] = {}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @torch.no_grad()
    def text_embeddings(self, texts: list[str]) -> torch.Tensor:
        missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if missing:
            tokens = self.bundle.tokenizer(missing).to(self.device)
            for text, emb in zip(missing, self.model.encode_text(tokens).float()):
                self._text_cache[text] = emb
        return torch.stack([self._text_cache[t] for t in texts])

    def pixels_for_clip(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> CLIP's normalised input, differentiably."""
        x = (images.float() + 1.0) / 2.0
        cfg = getattr(self.bundle, "preprocess_cfg", None) or {}
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            mode = "bilinear" if cfg.get("interpolation") == "bilinear" else "bicubic"
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode=mode, align_corners=False, antialias=True)
        mean = torch.tensor(cfg.get("mean", OPENAI_MEAN), device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(cfg.get("std", OPENAI_STD), device=x.device).view(1, 3, 1, 1)
        return ((x - mean) / std).to(self.dtype)

    def image_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(self.pixels_for_clip(images)).float()

    def to(self, device, dtype=None) -> "ClipGuide":
        self.model.to(device=device, dtype=dtype)
        return self
