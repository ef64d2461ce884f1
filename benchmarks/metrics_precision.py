"""Drift of each metric when its network runs in half precision, against its agreement tolerance.

    python benchmarks/metrics_precision.py [--weights random] [--device cpu] [--dtype bfloat16] [--n 2]

For each metric, the same pairs are scored twice with the same network object: in fp32, then
under ``torch.autocast`` in the half dtype (weights stay fp32, matrix products and
convolutions run in half: the mixed precision a GPU run would use). The drift is the largest
per-pair difference (FID: the set's value); a metric is safe in half precision only when the
drift is within the tolerance its agreement test holds it to
(:data:`spf_bench.evaluation.precision.AGREEMENT_TOLERANCE`). ID runs in onnxruntime, which
autocast does not reach: it is reported as fp32 only.

Measured on the CPU (2 shared cores), bf16 autocast, n=2 pairs, largest drift / tolerance:
LPIPS 9.0e-05 / 1e-06 (random, the real AlexNet), CLIP-I 1.0e-04 / 1e-05 (random, ViT-L-14),
CLIP-T 3.4e-03 / 1e-03 and FID 8.7 % / 0.01 % relative (tiny weights; random ran out of
time). None is safe. SAM, HPSv2 and MPS were not measured at real size for lack of CPU time;
they stay fp32 until measured within tolerance.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

METRICS = ("FID", "LPIPS", "ID", "CLIP-I", "Seg-Cons", "CLIP-T", "HPSv2", "MPS")


def _make_set(root: Path, n: int) -> tuple[Path, Path]:
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "set" / "originals").mkdir(parents=True)
    (root / "m" / "images").mkdir(parents=True)
    triples = []
    for i in range(n):
        tid = f"t{i:05d}"
        # smooth random fields: closer to photographs than per-pixel noise
        small = rng.random((16, 16, 3))
        image = np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize((256, 256), Image.BICUBIC))
        Image.fromarray(image).save(root / "set" / "originals" / f"{tid}.png")
        Image.fromarray(np.roll(image, 5, axis=1)).save(root / "m" / "images" / f"{tid}.png")
        triples.append({"id": tid, "category": "clothing", "base_caption": "a photo of a person",
                        "target_caption": "wearing a red hat", "seed": i,
                        "sha256": hashlib.sha256((root / "set" / "originals" / f"{tid}.png").read_bytes()).hexdigest()})
    (root / "set" / "manifest.json").write_text(json.dumps({"set": {}, "triples": triples}))
    return root / "set", root / "m" / "images"


def measure(metric: str, weights: str, device: str, dtype: torch.dtype, n: int) -> dict:
    from spf_bench.evaluation import evaluator
    from spf_bench.evaluation.precision import AGREEMENT_TOLERANCE, within_tolerance
    from spf_bench.metrics import registry
    from spf_bench.metrics.backbones import make_backbone

    root = Path(tempfile.mkdtemp(prefix="spf-precision-"))
    triples, images = _make_set(root, n)
    pairs = evaluator.load_pairs(triples, images)
    options = replace(evaluator.EvalOptions(metrics=(metric,), weights=weights, device=device, use_cache=False,
                                            sam_points_per_side=4, batch_size=n))
    name = registry.metric(metric).backbones[0]
    backbone = make_backbone(name, weights, device, None, **({"points_per_side": 4} if name == "sam" else {}))
    start = time.perf_counter()
    full = evaluator.score_pairs(pairs, options, {name: backbone}, None, progress=False)
    with torch.autocast(torch.device(device).type, dtype=dtype):
        half = evaluator.score_pairs(pairs, options, {name: backbone}, None, progress=False)
    if metric in full.set_values:  # a set-level metric (FID): one value for the set
        reference, value = np.array([full.set_values[metric]]), np.array([half.set_values[metric]])
    else:
        reference, value = full.per_pair[metric], half.per_pair[metric]
    drift = float(np.nanmax(np.abs(value - reference))) if np.isfinite(reference).any() else float("nan")
    safe = bool(all(within_tolerance(metric, float(r), float(v)) for r, v in zip(reference, value)))
    return {"metric": metric, "drift": drift, "tolerance": AGREEMENT_TOLERANCE[metric], "safe": safe,
            "fp32": [float(x) for x in reference], "half": [float(x) for x in value],
            "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="random")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16"))
    parser.add_argument("--n", type=int, default=2, help="pairs scored (FID needs at least 2)")
    parser.add_argument("--metrics", default=",".join(m for m in METRICS if m != "ID"))
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    print(f"half-precision drift: {args.dtype} autocast vs fp32, weights={args.weights}, device={args.device}, n={args.n}")
    for metric in args.metrics.split(","):
        row = measure(metric, args.weights, args.device, dtype, args.n)
        kind, tol = row["tolerance"]
        print(f"  {metric:9s} drift {row['drift']:.3g}  tolerance {kind} {tol:g}  "
              f"{'SAFE' if row['safe'] else 'not safe'}  fp32 {row['fp32']}  half {row['half']}  ({row['seconds']} s)",
              flush=True)


if __name__ == "__main__":
    main()
