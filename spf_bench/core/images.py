"""Reading portrait images, with one clear sentence naming the file when one is broken."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from spf_bench.core.errors import SpfError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Transparent pixels are composited over white, so a cut-out portrait is scored as displayed.
ALPHA_BACKGROUND = (255, 255, 255)


def from_uint16(values: np.ndarray) -> np.ndarray:
    """16-bit to 8-bit by round(v / 257): 0 -> 0, 65535 -> 255, monotone, no bias."""
    return np.floor(values.astype(np.float64) / 257.0 + 0.5).clip(0, 255).astype(np.uint8)


def _composite(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, ALPHA_BACKGROUND + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_rgb_uint8(image: Image.Image) -> np.ndarray:
    """A decoded Pillow image as RGB uint8 [H, W, 3] by the policy of this module."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        gray = np.asarray(image)
        if mode == "I" and gray.max(initial=0) <= 255:
            gray8 = gray.astype(np.uint8)  # 8-bit data stored in a 32-bit container
        else:
            gray8 = from_uint16(gray.clip(0, 65535))
        return np.repeat(gray8[:, :, None], 3, axis=2)
    if mode == "F":
        # Float images carry no convention; [0, 1] is the common one for saved tensors.
        gray8 = np.floor(np.asarray(image).clip(0, 1) * 255 + 0.5).astype(np.uint8)
        return np.repeat(gray8[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info):
        return np.asarray(_composite(image))
    return np.asarray(image.convert("RGB"))


def array16_to_rgb_uint8(array: np.ndarray) -> np.ndarray:
    """A 16-bit array as OpenCV decodes it (gray, BGR or BGRA) -> RGB uint8 by the same policy."""
    if array.ndim == 2:
        return np.repeat(from_uint16(array)[:, :, None], 3, axis=2)
    if array.shape[2] == 4:
        rgb = array[:, :, 2::-1].astype(np.float64)
        alpha = array[:, :, 3:4].astype(np.float64) / 65535.0
        background = np.array(ALPHA_BACKGROUND, dtype=np.float64) * 257.0
        return from_uint16(rgb * alpha + background * (1 - alpha))
    return from_uint16(array[:, :, ::-1])


def _png_bit_depth(data: bytes) -> int | None:
    # IHDR is the first chunk: signature (8) + length (4) + type (4) + w (4) + h (4), then depth.
    if data[:8] == _PNG_SIGNATURE and len(data) > 24:
        return data[24]
    return None


def read_image(path: Path, triple_id: str | None = None) -> tuple[np.ndarray, str]:
    """RGB uint8 [H, W, 3] of an image file and the sha256 of its bytes.

    Pillow drops the low byte of 16-bit colour PNGs, so those are decoded with OpenCV to
    apply the suite's rounding; everything else goes through Pillow.
    """
    path = Path(path)
    where = f"{path}" + (f" (triple {triple_id})" if triple_id is not None else "")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpfError(f"Image {where} cannot be read ({exc.strerror}).") from None
    digest = hashlib.sha256(data).hexdigest()
    try:
        if _png_bit_depth(data) == 16:
            import cv2

            array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            if array is None:
                raise ValueError("OpenCV could not decode it")
            return array16_to_rgb_uint8(array), digest
        import io

        with Image.open(io.BytesIO(data)) as image:
            image.load()  # decodes fully: a truncated file fails here, not later in a batch
            return to_rgb_uint8(image), digest
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise SpfError(f"Image {where} is corrupt or truncated ({detail}).") from None
