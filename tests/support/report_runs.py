"""Builders of results folders with known numbers, for the report tests (no test lives here).

Every per-pair column is its method's known mean plus offsets that sum to zero, so each table
value is known exactly; images are small solid-colour PNGs whose colour names their method, so a
grid's tiles can be told apart by their pixels.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

METRIC_NAMES = ("FID", "LPIPS", "ID", "CLIP-I", "Seg-Cons", "CLIP-T", "HPSv2", "MPS")
CATEGORIES = ("accessories", "appearance", "clothing", "facial attributes", "image style")
N_TRIPLES = 10
IDS = tuple(f"t{i:02d}" for i in range(N_TRIPLES))
OFFSETS = (np.arange(N_TRIPLES) - (N_TRIPLES - 1) / 2) * 0.01  # sums to zero: means stay exact
TRIPLES_SHA = "a" * 64

# Known means (FID is the set value written to summary.json). Mostly the paper's Tab. 1, 4, 5,
# except ours' CLIP-T, lowered to 0.25 so that a paper row (0.30) would win were it ranked.
MEANS = {
    "naive": (20.41, 0.57, 0.21, 0.63, 57.77, 0.24, 0.21, 0.67),
    "lora": (9.82, 0.38, 0.52, 0.71, 58.37, 0.27, 0.23, 1.21),
    "ours": (4.50, 0.35, 0.55, 0.83, 75.74, 0.25, 0.28, 1.49),
    "ours-no-sfcm": (4.13, 0.14, 0.73, 0.88, 80.03, 0.17, 0.23, 1.09),
    "stage2-full": (7.82, 0.40, 0.309, 0.81, 48.39, 0.26, 0.22, 0.87),
    "only-stage2": (7.18, 0.38, 0.13, 0.71, 63.72, 0.19, 0.24, 1.12),
}
COLORS = {
    "original": (128, 128, 128),
    "naive": (230, 25, 75),
    "lora": (60, 180, 75),
    "ours": (0, 130, 200),
    "ours-no-sfcm": (245, 130, 48),
    "stage2-full": (145, 30, 180),
    "only-stage2": (70, 240, 240),
}


def per_pair_frame(method: str, missing_id: str | None = None) -> pd.DataFrame:
    """Known per-pair scores; ``missing_id`` gets a NaN ID (no face found), as the evaluator writes."""
    frame = pd.DataFrame({"id": list(IDS), "category": [CATEGORIES[i % len(CATEGORIES)] for i in range(N_TRIPLES)]})
    for name, mean in zip(METRIC_NAMES, MEANS[method]):
        if name != "FID":
            frame[name] = mean + OFFSETS
    frame["face_found"] = True
    frame["reason"] = ""
    if missing_id is not None:
        frame.loc[frame["id"] == missing_id, ["ID", "face_found", "reason"]] = [np.nan, False, "no face found"]
    return frame


def solid_png(path: Path, color: tuple[int, int, int], size: int = 24) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), color).save(path)


def write_run(root: Path, method: str, frame: pd.DataFrame | None = None, fid: float | None = None,
              weights: str = "tiny", color=None, reconstruction: bool = False, folder: str | None = None,
              triples_sha: str = TRIPLES_SHA) -> Path:
    frame = per_pair_frame(method) if frame is None else frame
    out = root / (folder or method)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "per_pair.csv", index=False)
    fid = MEANS[method][0] if fid is None and method in MEANS else fid
    summary = {
        "identity": {"method": method, "checkpoint_sha256": hashlib.sha256(method.encode()).hexdigest(),
                     "triples_sha256": triples_sha, "weights": weights, "date": "2026-11-29T09:00:00Z"},
        "metrics": {"FID": {"value": fid, "ci_low": None, "ci_high": None, "n": len(frame), "higher_is_better": False}},
        "face_found_rate": float(frame["face_found"].astype(bool).mean()) if "face_found" in frame else None,
    }
    if reconstruction and method in MEANS:
        summary["reconstruction"] = {name: {"value": MEANS[method][i] / 2, "ci_low": None, "ci_high": None, "n": 10}
                                     for i, name in enumerate(METRIC_NAMES[:5])}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    color = color or COLORS.get(method, (10, 10, 10))
    for tid in frame["id"]:
        solid_png(out / "images" / f"{tid}.png", color)
        if reconstruction:
            solid_png(out / "reconstruction" / f"{tid}.png", tuple(c // 2 for c in color))
    return out


def write_triples(root: Path) -> Path:
    triples = [{"id": tid, "category": CATEGORIES[i % len(CATEGORIES)],
                "base_caption": "a photo of a young woman, long brown hair, in a park",
                "target_caption": "wearing round glasses", "seed": i, "sha256": "0" * 64}
               for i, tid in enumerate(IDS)]
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps({"set": {"weights": "tiny"}, "triples": triples}, indent=2))
    for tid in IDS:
        solid_png(root / "originals" / f"{tid}.png", COLORS["original"])
    return root


def write_standard_runs(root: Path, methods=tuple(MEANS), reconstruction: bool = True) -> Path:
    """A results folder with every method of ``MEANS``; naive lacks a face on t03."""
    for method in methods:
        frame = per_pair_frame(method, missing_id="t03" if method == "naive" else None)
        write_run(root, method, frame, reconstruction=reconstruction and method in ("naive", "ours"))
    return root
