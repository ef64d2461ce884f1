"""Our open_clip model behind the interface torchmetrics' ``CLIPScore`` expects.

``CLIPScore`` only knows Hugging Face ``CLIPModel`` / ``CLIPProcessor`` pairs, but it accepts a
callable returning ``(model, processor)``. These two small adapters let the reference
implementation run on the very model our CLIP-T uses, so the agreement test and the
throughput benchmark compare like with like.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from PIL import Image


class OpenClipAsHfModel(torch.nn.Module):
    """The two methods ``CLIPScore`` calls on a HF ``CLIPModel``, served by an open_clip bundle."""

    def __init__(self, bundle) -> None:
        super().__init__()
        self.bundle = bundle
        # CLIPScore reads the text length limit from a HF config; open_clip's context is 77.
        self.config = SimpleNamespace(text_config=SimpleNamespace(max_position_embeddings=77))

    def get_image_features(self, pixel_values):
        return self.bundle.model.encode_image(pixel_values)

    def get_text_features(self, input_ids, attention_mask=None):
        return self.bundle.model.encode_text(input_ids)


class OpenClipAsHfProcessor:
    """CLIP's own transform and tokenizer behind the processor call ``CLIPScore`` makes."""

    def __init__(self, bundle) -> None:
        self.bundle = bundle

    def __call__(self, images=None, text=None, return_tensors="pt", padding=True):
        if images is not None:
            pil = [Image.fromarray(i.permute(1, 2, 0).numpy()) for i in images]
            return {"pixel_values": torch.stack([self.bundle.preprocess(p) for p in pil])}
        ids = self.bundle.tokenizer(text)
        return {"input_ids": ids, "attention_mask": (ids != 0).long()}


def clipscore_model_and_processor(bundle) -> tuple[OpenClipAsHfModel, OpenClipAsHfProcessor]:
    return OpenClipAsHfModel(bundle), OpenClipAsHfProcessor(bundle)
