"""Reading portrait images, with one clear sentence naming the file when one is broken."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import SpfError
from .metrics.preprocess import array16_to_rgb_uint8, to_rgb_uint8

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
