"""Helpers shared by the metrics tests: synthetic portraits and a tiny triple-set folder.

Imported by the other ``test_metrics_*`` modules; it holds one sanity test of its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CATEGORIES = ("accessory", "expression", "hair")


def portrait(seed: int, size: int = 64, shift: int = 0) -> Image.Image:
    """A drawn head-and-shoulders picture; ``seed`` varies colours and shapes, ``shift`` moves it."""
    rng = np.random.default_rng(seed)
    background = tuple(int(v) for v in rng.integers(40, 220, 3))
    skin = tuple(int(v) for v in rng.integers(150, 240, 3))
    hair = tuple(int(v) for v in rng.integers(0, 120, 3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    s = size / 64
    cx, cy = 32 * s + shift, 28 * s
    w, h = (14 + rng.integers(0, 5)) * s, (18 + rng.integers(0, 5)) * s
    draw.rectangle([cx - 24 * s, 50 * s, cx + 24 * s, size], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    draw.ellipse([cx - w - 2 * s, cy - h - 4 * s, cx + w + 2 * s, cy + 4 * s], fill=hair)
    draw.ellipse([cx - w, cy - h, cx + w, cy + h], fill=skin)
    for ex in (-6, 6):
        draw.ellipse([cx + (ex - 2) * s, cy - 5 * s, cx + (ex + 2) * s, cy - 1 * s], fill=(20, 20, 20))
    draw.arc([cx - 6 * s, cy + 2 * s, cx + 6 * s, cy + 10 * s], 0, 180, fill=(120, 30, 30), width=max(1, int(s)))
    noise = rng.integers(-6, 7, (size, size, 3))
    return Image.fromarray(np.clip(np.asarray(image).astype(int) + noise, 0, 255).astype(np.uint8))


def make_triple_set(root: Path, n: int = 6, size: int = 64, seed: int = 0) -> Path:
    """A triple-set folder in the layout of docs/formats.md: manifest.json + originals/<id>.png."""
    root = Path(root)
    (root / "originals").mkdir(parents=True, exist_ok=True)
    triples = []
    for i in range(n):
        tid = f"t{i:05d}"
        portrait(seed * 1000 + i, size).save(root / "originals" / f"{tid}.png")
        import hashlib

        triples.append({"id": tid, "category": CATEGORIES[i % len(CATEGORIES)],
                        "base_caption": f"a photo of a person number {i}", "target_caption": "wearing round glasses",
                        "seed": i, "sha256": hashlib.sha256((root / "originals" / f"{tid}.png").read_bytes()).hexdigest()})
    manifest = {"set": {"base_model": "synthetic drawings", "height": size, "width": size, "weights": "tiny"},
                "triples": triples}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


def make_method_run(root: Path, triples_dir: Path, method: str = "m", shift: int = 2, seed: int = 0) -> Path:
    """``root/<method>/images/<id>.png``: each original redrawn slightly moved and recoloured."""
    manifest = json.loads((Path(triples_dir) / "manifest.json").read_text())
    folder = Path(root) / method / "images"
    folder.mkdir(parents=True, exist_ok=True)
    size = manifest["set"]["height"]
    for i, triple in enumerate(manifest["triples"]):
        portrait(seed * 1000 + i + 7 * shift, size, shift=shift).save(folder / f"{triple['id']}.png")
    return Path(root) / method

