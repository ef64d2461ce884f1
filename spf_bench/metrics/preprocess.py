"""Exactly what each backbone receives, from a decoded image to its input tensor.

Colour conversion (every backbone, applied once when an image is read, :func:`to_rgb_uint8`):
- the result is always RGB, 8 bits per channel, shape [H, W, 3];
- grayscale (``L``, ``1``, ``I;16``...) is replicated to three channels;
- palette images are expanded through their palette;
- transparency (``RGBA``, ``LA``, palette with transparency) is composited over an opaque
  white background, so a cut-out portrait is scored as it is displayed, not with whatever
  colours hide under alpha 0;
- 16-bit images are reduced with round(v / 257), which maps 0..65535 onto 0..255 exactly at
  both ends (see :func:`from_uint16`); CMYK / YCbCr go through Pillow's RGB conversion.

Pairs of different sizes: the customized image is resized to the original's size (Pillow
bicubic with its antialiasing filter) before any backbone, because LPIPS and Seg-Cons compare
pixel grids position by position; each resized pair is counted in the run's record.

Per backbone (see ``BACKBONE_INPUTS``, recorded with every score):
- inception: uint8 [N, 3, H, W] in [0, 255]; the network itself resizes to 299×299 with the
  TensorFlow-1-compatible bilinear interpolation of torch-fidelity / torchmetrics;
- lpips: float32 [N, 3, H, W] in [-1, 1] as x / 127.5 - 1, at the image's own size;
- clip: CLIP's own transform on the RGB image (bicubic resize of the shortest side to 224,
  centre crop 224, [0, 1], OpenAI mean / std normalisation);
- face: BGR uint8 [H, W, 3] (insightface's convention); the detector letterboxes to its
  640×640 input and the recogniser gets the 112×112 crop aligned on the five landmarks;
- sam: RGB uint8 [H, W, 3]; SAM resizes the longest side to 1024, normalises with its pixel
  mean / std and pads to 1024×1024; masks come back at the image's own size;
- hps / mps: each network's own transform on the RGB image, with the full caption;
- oracle (synthetic world only): float32 [N, 3, S, S] in [-1, 1] as x / 127.5 - 1, at the
  world's own size S (another size is refused rather than resized: the oracle was trained at S).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from spf_bench.core.images import ALPHA_BACKGROUND, to_rgb_uint8  # noqa: F401 (the decoding policy lives with the reader; re-exported)

SIZE_POLICY = "resize customized to original size, PIL bicubic (antialiased)"

BACKBONE_INPUTS = {
    "inception": {"dtype": "uint8", "range": "[0, 255]", "layout": "NCHW",
                  "resizer": "torch-fidelity TF1-compatible bilinear to 299x299 (inside the network)", "crop": "none"},
    "lpips": {"dtype": "float32", "range": "[-1, 1]", "layout": "NCHW", "conversion": "x / 127.5 - 1",
              "resizer": "none (image size)", "crop": "none"},
    "clip": {"dtype": "float32", "range": "OpenAI mean/std normalised", "layout": "NCHW",
             "resizer": "bicubic shortest side to 224 (CLIP's own transform)", "crop": "centre 224"},
    "face": {"dtype": "uint8", "range": "[0, 255]", "layout": "HWC BGR",
             "resizer": "detector letterbox 640; recogniser 112x112 five-landmark similarity warp", "crop": "aligned face"},
    "sam": {"dtype": "uint8", "range": "[0, 255]", "layout": "HWC RGB",
            "resizer": "longest side 1024 (SAM ResizeLongestSide), pad to 1024", "crop": "none"},
    "hps": {"dtype": "float32", "range": "network's own normalisation", "layout": "NCHW",
            "resizer": "network's own transform", "crop": "network's own transform"},
    "mps": {"dtype": "float32", "range": "network's own normalisation", "layout": "NCHW",
            "resizer": "network's own transform", "crop": "network's own transform"},
    "oracle": {"dtype": "float32", "range": "[-1, 1]", "layout": "NCHW", "conversion": "x / 127.5 - 1",
               "resizer": "none (an image not of the oracle's own size is refused)", "crop": "none"},
}


def match_size(original: np.ndarray, customized: np.ndarray) -> tuple[np.ndarray, bool]:
    """The customized image at the original's size, and whether it had to be resized."""
    if customized.shape[:2] == original.shape[:2]:
        return customized, False
    height, width = original.shape[:2]
    resized = Image.fromarray(customized).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(resized), True


def inception_input(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def lpips_input(images: list[np.ndarray]) -> torch.Tensor:
    # Same arithmetic as lpips.im2tensor (x / (255 / 2) - 1), in float32.
    return inception_input(images).to(torch.float32) / 127.5 - 1.0


def clip_input(images: list[np.ndarray], transform) -> torch.Tensor:
    return torch.stack([transform(Image.fromarray(image)) for image in images])


def face_input(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[:, :, ::-1])


def sam_input(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image)
