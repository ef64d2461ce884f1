"""Throughput of the metric suite against the reference packages run one after another.

On the same N synthetic pairs and the same loaded networks, side by side in one run:
1. the reference way: each metric by its own package, each re-encoding what it needs
   (torchmetrics FID, lpips, open_clip for CLIP-I, torchmetrics CLIPScore for CLIP-T,
   insightface FaceAnalysis, SamPredictor, HPS v2 and MPS scoring one image at a time);
2. our suite scoring a first method (empty feature cache);
3. our suite scoring a second method on the same triples (originals cached).
Printed: the speed-up of 2 over 1 (target >= 1.5), the ratio 3 / 2 (target <= 0.6) and the
share of 2's time spent outside backbone forward passes (target < 10%). Network loading is
excluded from every figure (the networks are loaded once, before timing).

    python benchmarks/metrics_throughput.py --weights tiny --n 8
    python benchmarks/metrics_throughput.py --weights random --n 2 --metrics FID,LPIPS,ID,CLIP-I,CLIP-T
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

ALL = ("FID", "LPIPS", "ID", "CLIP-I", "Seg-Cons", "CLIP-T", "HPSv2", "MPS")


def make_data(root: Path, n: int, size: int):
    from test_metrics_support import make_method_run, make_triple_set

    triples = make_triple_set(root / "triples", n=n, size=size)
    first = make_method_run(root / "runs", triples, method="first", shift=2)
    second = make_method_run(root / "runs", triples, method="second", shift=4)
    return triples, first, second


def read_pairs(triples: Path, run: Path):
    manifest = json.loads((triples / "manifest.json").read_text())["triples"]
    originals = [np.asarray(Image.open(triples / "originals" / f"{t['id']}.png").convert("RGB")) for t in manifest]
    customized = [np.asarray(Image.open(run / "images" / f"{t['id']}.png").convert("RGB")) for t in manifest]
    return manifest, originals, customized


# ----------------------------------------------------------------------------- the reference way

def ref_fid(net, originals, customized, device):
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=net).to(device)
    fid.update(torch.from_numpy(np.stack(originals)).permute(0, 3, 1, 2).to(device), real=True)
    fid.update(torch.from_numpy(np.stack(customized)).permute(0, 3, 1, 2).to(device), real=False)
    return float(fid.compute())


def ref_lpips(net, originals, customized, device):
    import lpips

    with torch.no_grad():
        return float(np.mean([float(net(lpips.im2tensor(o).to(device), lpips.im2tensor(c).to(device)))
                              for o, c in zip(originals, customized)]))


def ref_clip_i(bundle, originals, customized, device):
    with torch.no_grad():
        def embed(images):
            pixels = torch.stack([bundle.preprocess(Image.fromarray(i)) for i in images]).to(device)
            e = bundle.model.encode_image(pixels)
            return e / e.norm(dim=-1, keepdim=True)

        return float((embed(originals) * embed(customized)).sum(-1).mean())


def ref_clip_t(bundle, customized, captions, device):
    from torchmetrics.multimodal.clip_score import CLIPScore

    from spf_bench.metrics.clipscore_bridge import clipscore_model_and_processor

    model, processor = clipscore_model_and_processor(bundle)
    score = CLIPScore(model_name_or_path=lambda: (model, processor)).to(device)
    with torch.no_grad():
        score.update([torch.from_numpy(i.copy()).permute(2, 0, 1).to(device) for i in customized], captions)
    return float(score.compute()) / 100


def ref_id(faces, originals, customized, workdir: Path, det_size: int):
    from insightface.app import FaceAnalysis

    pack = workdir / "insightface" / "models" / "pack"
    pack.mkdir(parents=True, exist_ok=True)  # FaceAnalysis reads a model pack folder
    for model in (faces.detector, faces.recognizer):
        shutil.copy(model.model_file, pack / Path(model.model_file).name)
    app = FaceAnalysis(name="pack", root=str(workdir / "insightface"), allowed_modules=["detection", "recognition"],
                       providers=["CPUExecutionProvider"])
    app.prepare(ctx_id=-1, det_size=(det_size, det_size))
    values = []
    for o, c in zip(originals, customized):
        fo, fc = app.get(o[:, :, ::-1].copy()), app.get(c[:, :, ::-1].copy())
        if fo and fc:
            a = max(fo, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1])).normed_embedding
            b = max(fc, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1])).normed_embedding
            values.append(float(np.dot(a, b)))
    return float(np.mean(values)) if values else float("nan")


def ref_seg_cons(sam, originals, customized, points_per_side: int, device):
    from segment_anything import SamPredictor

    predictor = SamPredictor(sam)

    def masks(image):
        h, w = image.shape[:2]
        predictor.set_image(image)
        steps = (torch.arange(points_per_side, dtype=torch.float64) + 0.5) / points_per_side
        ys, xs = torch.meshgrid(steps * h, steps * w, indexing="ij")
        points = torch.stack([xs.reshape(-1), ys.reshape(-1)], 1).float()
        out = []
        for start in range(0, len(points), 32):
            coords = predictor.transform.apply_coords_torch(points[start:start + 32], (h, w)).to(device)[:, None]
            m, s, _ = predictor.predict_torch(coords, torch.ones(len(coords), 1, device=device), multimask_output=True)
            out.append(m[torch.arange(len(m)), s.argmax(1)].cpu())
        return torch.cat(out)

    values = []
    for o, c in zip(originals, customized):
        a, b = masks(o).flatten(1), masks(c).flatten(1)
        inter, union = (a & b).sum(1).double(), (a | b).sum(1).double()
        values.append(float(100 * torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union)).mean()))
    return float(np.mean(values))


def ref_scores(bundle, customized, captions, **kwargs):
    with torch.no_grad():
        return float(np.mean([float(bundle.score([Image.fromarray(i)], [c], **kwargs)[0]) for i, c in zip(customized, captions)]))


def warm_up(metrics, networks, manifest, originals, customized, args, workdir) -> None:
    """One untimed pass of each network on two pairs, so first-call costs (lazy initialisation,
    allocator growth, tokenizer loading) are charged to neither side. SAM is skipped (its cost
    is steady and a pass is long) and FID's Fréchet step too (only the network is warmed)."""
    two = slice(0, 2)
    with torch.no_grad():
        networks.get("inception") is not None and networks["inception"](
            torch.from_numpy(np.stack(originals[two])).permute(0, 3, 1, 2).to(args.device))
    rest = [m for m in metrics if m not in ("FID", "Seg-Cons")]
    run_reference(rest, networks, manifest[two], originals[two], customized[two], args, workdir)


def run_reference(metrics, networks, manifest, originals, customized, args, workdir):
    from spf_bench.triples.captions import full_caption

    targets = [t["target_caption"] for t in manifest]
    fulls = [full_caption(t["base_caption"], t["target_caption"]) for t in manifest]
    timings, values = {}, {}
    jobs = {
        "FID": lambda: ref_fid(networks["inception"], originals, customized, args.device),
        "LPIPS": lambda: ref_lpips(networks["lpips"], originals, customized, args.device),
        "ID": lambda: ref_id(networks["face"], originals, customized, workdir, args.det_size),
        "CLIP-I": lambda: ref_clip_i(networks["clip"], originals, customized, args.device),
        "Seg-Cons": lambda: ref_seg_cons(networks["sam"], originals, customized, args.sam_points, args.device),
        "CLIP-T": lambda: ref_clip_t(networks["clip"], customized, targets, args.device),
        "HPSv2": lambda: ref_scores(networks["hps"], customized, fulls),
        "MPS": lambda: ref_scores(networks["mps"], customized, fulls, condition="overall"),
    }
    for name in metrics:
        start = time.perf_counter()
        values[name] = jobs[name]()
        timings[name] = time.perf_counter() - start
    return values, timings


# ----------------------------------------------------------------------------- our suite

def run_ours(triples, run, metrics, networks, cache, args):
    from spf_bench.evaluation.evaluator import evaluate_run

    start = time.perf_counter()
    result = evaluate_run(triples, run, weights=args.weights, metrics=tuple(metrics), device=args.device,
                          batch_size=args.batch_size, networks=networks, cache=cache, progress=False, write=False,
                          sam_points_per_side=args.sam_points)
    wall = time.perf_counter() - start
    seconds = result.scores.seconds
    forward = sum(v for k, v in seconds.items() if k.startswith("forward:"))
    loading = sum(v for k, v in seconds.items() if k.startswith("load:"))
    values = {name: entry["value"] for name, entry in result.summary["metrics"].items()}
    return values, {"wall": wall - loading, "forward": forward, "outside_forward": wall - loading - forward,
                    "breakdown": seconds}


def load_networks(metrics, args):
    from spf_bench import zoo
    from spf_bench.evaluation.evaluator import zoo_networks_for

    networks, seconds = {}, {}
    for name in zoo_networks_for(metrics):
        start = time.perf_counter()
        networks[name] = zoo.load(name, source=args.weights, device=args.device)
        seconds[name] = time.perf_counter() - start
    return networks, seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="tiny", choices=("tiny", "random", "pretrained"))
    parser.add_argument("--n", type=int, default=8, help="pairs")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--metrics", default=",".join(ALL))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--sam-points", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    metrics = [m for m in ALL if m in args.metrics.split(",")]
    args.det_size = 160 if args.weights != "pretrained" else 640  # the tiny detector's fixed input

    workdir = Path(tempfile.mkdtemp(prefix="spf-metrics-bench-"))
    try:
        from spf_bench.evaluation.features_cache import FeatureCache
        from spf_bench.metrics import SmallSetWarning

        warnings.simplefilter("ignore", SmallSetWarning)
        triples, first, second = make_data(workdir, args.n, args.size)
        networks, load_seconds = load_networks(metrics, args)
        manifest, originals, customized = read_pairs(triples, first)
        warm_up(metrics, networks, manifest, originals, customized, args, workdir / "warm")
        ref_values, ref_times = run_reference(metrics, networks, manifest, originals, customized, args, workdir)
        cache = FeatureCache(workdir / "features")
        ours_first, first_times = run_ours(triples, first, metrics, networks, cache, args)
        ours_second, second_times = run_ours(triples, second, metrics, networks, cache, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    reference_total = sum(ref_times.values())
    figures = {
        "weights": args.weights, "n": args.n, "size": args.size, "metrics": metrics, "device": args.device,
        "threads": args.threads, "load_average_after": os.getloadavg(), "sam_points": args.sam_points, "batch_size": args.batch_size,
        "load_seconds": load_seconds, "reference_seconds": ref_times, "reference_total": reference_total,
        "ours_first": first_times, "ours_second": second_times,
        "speedup_vs_reference": reference_total / first_times["wall"],
        "second_over_first": second_times["wall"] / first_times["wall"],
        "outside_forward_share": first_times["outside_forward"] / first_times["wall"],
        "values": {"reference": ref_values, "ours": ours_first},
    }
    print(f"weights={args.weights} n={args.n} size={args.size}px device={args.device} threads={args.threads} "
          f"metrics={','.join(metrics)} sam_points={args.sam_points} load average {os.getloadavg()[0]:.1f}")
    print("reference, per metric (s): " + ", ".join(f"{k} {v:.2f}" for k, v in ref_times.items()))
    print(f"reference total     {reference_total:8.2f} s")
    print(f"ours, first method  {first_times['wall']:8.2f} s   speed-up x{figures['speedup_vs_reference']:.2f} (target >= 1.5)")
    print(f"ours, second method {second_times['wall']:8.2f} s   ratio {figures['second_over_first']:.2f} (target <= 0.6)")
    print(f"outside forward passes: {first_times['outside_forward']:.2f} s = {figures['outside_forward_share']:.1%} (target < 10%)")
    print("values (reference | ours): " + ", ".join(
        f"{m} {ref_values[m]:.4f} | {ours_first[m]:.4f}" for m in metrics if ours_first.get(m) is not None))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
