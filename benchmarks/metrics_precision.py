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
time); at real size with random weights, Seg-Cons 0.035 / 0 (n=1, 4 x 4 points: the masks are
compared bit for bit) and MPS 4.2e-03 / 1e-05 (n=2). None is safe, so every network stays
fp32. HPSv2 is not measured: the HPS network turns autocast off itself outside CUDA and runs
under CUDA's float16 autocast on a GPU, as hpsv2 does (the record's ``dtype`` says so); no
layer ran in the half dtype, which the script detects and reports instead of a drift of 0.

    python benchmarks/metrics_precision.py --weights random --metrics Seg-Cons --n 1
    python benchmarks/metrics_precision.py --weights random --metrics HPSv2,MPS --n 2
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import shutil
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


@contextlib.contextmanager
def _half_outputs(network, dtype: torch.dtype):
    """Collects the names of the network's layers whose output came out in ``dtype``."""
    from spf_bench.evaluation.memory_budget import _modules_of

    seen: list[str] = []

    def hook(module, _inputs, output):
        if isinstance(output, torch.Tensor) and output.dtype == dtype:
            seen.append(type(module).__name__)

    handles = [m.register_forward_hook(hook) for top in _modules_of(network) for m in top.modules()]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


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
    with torch.autocast(torch.device(device).type, dtype=dtype), _half_outputs(backbone.network, dtype) as seen:
        half = evaluator.score_pairs(pairs, options, {name: backbone}, None, progress=False)
    # No layer computed in the half dtype: autocast never reached the network (HPS switches
    # it off itself outside CUDA, as hpsv2 does), so nothing was measured or declared safe.
    reached = bool(seen)
    if metric in full.set_values:  # a set-level metric (FID): one value for the set
        reference, value = np.array([full.set_values[metric]]), np.array([half.set_values[metric]])
    else:
        reference, value = full.per_pair[metric], half.per_pair[metric]
    drift = float(np.nanmax(np.abs(value - reference))) if np.isfinite(reference).any() else float("nan")
    safe = reached and bool(all(within_tolerance(metric, float(r), float(v)) for r, v in zip(reference, value)))
    shutil.rmtree(root, ignore_errors=True)
    return {"metric": metric, "drift": drift, "tolerance": AGREEMENT_TOLERANCE[metric], "safe": safe, "reached": reached,
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
              f"{'SAFE' if row['safe'] else 'not safe' if row['reached'] else 'not measured: autocast did not reach it'}  fp32 {row['fp32']}  half {row['half']}  ({row['seconds']} s)",
              flush=True)


if __name__ == "__main__":
    main()
