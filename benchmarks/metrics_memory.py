"""Peak memory of scoring with all eight metrics: every network resident versus backbone by backbone.

    python benchmarks/metrics_memory.py [--weights random] [--methods 1,3] [--single sam,mps] [--orders resident,backbone]

Each measurement runs in a fresh child process (a process's peak resident set only grows), on
the real architectures (``random`` weights) and one triple. The customized images of the
methods are the original slightly shifted: what is measured is scoring, not generation.

* ``resident``: every metric network loaded up front and kept for every method (the order
  ``spf-bench run --scoring resident`` keeps);
* ``backbone``: one network at a time, each loaded once for all methods
  (:func:`spf_bench.evaluation.backbone_major.score_jobs`, the default of ``spf-bench run``);
* ``single NAME``: one network loaded and run on one image, its own working set.

Memory is the peak RSS on the CPU (``torch.cuda.max_memory_allocated`` on a GPU), printed
absolute and above the process's footprint after imports; loads are counted per network.
Every child clears the feature cache first, so both orders start cold.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

METRICS = ("FID", "LPIPS", "ID", "CLIP-I", "Seg-Cons", "CLIP-T", "HPSv2", "MPS")
GIB = 1024 ** 3


def _rss_now() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak(device: str) -> int:
    import torch

    from spf_bench.evaluation.backbone_major import peak_rss_bytes

    return torch.cuda.max_memory_allocated() if device.startswith("cuda") else peak_rss_bytes()


def _make_set(root: Path, n_methods: int) -> tuple[Path, list[Path]]:
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "set" / "originals").mkdir(parents=True, exist_ok=True)
    original = (rng.random((512, 512, 3)) * 255).astype(np.uint8)
    Image.fromarray(original).save(root / "set" / "originals" / "t00000.png")
    manifest = {"set": {"weights": "random"}, "triples": [
        {"id": "t00000", "category": "facial_attributes", "base_caption": "a photo of a person",
         "target_caption": "wearing round glasses", "seed": 0,
         "sha256": hashlib.sha256((root / "set" / "originals" / "t00000.png").read_bytes()).hexdigest()}]}
    (root / "set" / "manifest.json").write_text(json.dumps(manifest))
    folders = []
    for m in range(n_methods):
        folder = root / f"m{m}" / "images"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.roll(original, 3 * (m + 1), axis=1)).save(folder / "t00000.png")
        folders.append(folder)
    return root / "set", folders


def child(mode: str, n_methods: int, weights: str, device: str, single: str | None,
          metrics: tuple[str, ...] = METRICS) -> dict:
    import torch

    from spf_bench import zoo
    from spf_bench.core import paths
    from PIL import Image

    from spf_bench.evaluation import backbone_major, evaluator
    from spf_bench.metrics.backbones import make_backbone

    shutil.rmtree(paths.cache_dir() / "features", ignore_errors=True)
    options = dict(sam_points_per_side=2, n_bootstrap=20, fid_bootstrap=2, batch_size=1, device=device)
    loads: dict[str, int] = {}
    real_load = zoo.load

    def counted(name, *args, **kwargs):
        if str(kwargs.get("device", "cpu")) != "meta":
            loads[name] = loads.get(name, 0) + 1
        return real_load(name, *args, **kwargs)

    zoo.load = counted
    work = Path(tempfile.mkdtemp(prefix="spf-memory-"))
    triples, folders = _make_set(work, n_methods)
    baseline = _rss_now()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
    start = time.perf_counter()
    with torch.inference_mode():
        if mode == "single":
            image = np.asarray(Image.open(triples / "originals" / "t00000.png"))
            backbone = make_backbone(single, weights, device, None,
                                               **({"points_per_side": 2} if single == "sam" else {}))
            if single in ("hps", "mps"):
                backbone.score([image], ["a photo of a person wearing round glasses"])
            else:
                backbone.encode([image])
        elif mode == "resident":
            networks = {name: zoo.load(name, source=weights, device=device)
                        for name in evaluator.zoo_networks_for(metrics)}
            for folder in folders:
                evaluator.evaluate_run(triples, folder, weights, metrics=metrics, networks=networks, write=False,
                                       progress=False, **options)
        else:
            jobs = [backbone_major.scoring_job(triples, folder, weights, metrics=metrics, **options) for folder in folders]
            backbone_major.score_jobs(jobs, device=device, progress=False)
    seconds = time.perf_counter() - start
    shutil.rmtree(work, ignore_errors=True)
    peak = _peak(device)
    return {"mode": mode, "methods": n_methods, "single": single, "peak": peak, "baseline": baseline,
            "above_baseline": peak - baseline, "loads": loads, "seconds": round(seconds, 1)}


def _run_child(args, mode, n_methods, single=None) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--n-methods", str(n_methods), "--weights", args.weights,
               "--device", args.device, "--metrics", args.metrics] + (["--network", single] if single else [])
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    if done.returncode != 0:
        raise SystemExit(f"{mode} ({n_methods} method(s) {single or ''}) failed:\n{done.stderr[-3000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["wall"] = round(time.perf_counter() - start, 1)  # the child's whole life: imports, builds, scoring
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="random")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--methods", default="1,3", help="method counts to measure")
    parser.add_argument("--single", default="sam,mps,hps", help="networks whose own working set is measured")
    parser.add_argument("--metrics", default=",".join(METRICS),
                        help="metrics scored (default: all eight; fewer where CPU time is short)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per child process")
    parser.add_argument("--orders", default="resident,backbone",
                        help="scoring orders measured (the resident order at real size needs the sum of all networks)")
    parser.add_argument("--child", choices=("resident", "backbone", "single"), help=argparse.SUPPRESS)
    parser.add_argument("--n-methods", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--network", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.n_methods, args.weights, args.device, args.network,
                               tuple(args.metrics.split(",")))))
        return
    unit = "max_memory_allocated" if args.device.startswith("cuda") else "peak RSS"
    print(f"scoring memory ({unit}), weights={args.weights}, device={args.device}, one triple, metrics {args.metrics}")
    singles = [_run_child(args, "single", 1, name) for name in args.single.split(",") if name]
    for row in singles:
        print(f"  single {row['single']:9s} peak {row['peak'] / GIB:6.2f} GiB  above imports "
              f"{row['above_baseline'] / GIB:6.2f} GiB  ({row['seconds']} s, child {row['wall']} s)", flush=True)
    largest = max(singles, key=lambda r: r["above_baseline"]) if singles else None
    for n in (int(x) for x in args.methods.split(",")):
        for mode in (o for o in ("resident", "backbone") if o in args.orders.split(",")):
            row = _run_child(args, mode, n)
            ratio = f"  = {row['above_baseline'] / largest['above_baseline']:.2f} x largest ({largest['single']})" if largest else ""
            print(f"  {mode:8s} {n} method(s): peak {row['peak'] / GIB:6.2f} GiB  above imports "
                  f"{row['above_baseline'] / GIB:6.2f} GiB{ratio}  loads {json.dumps(row['loads'], sort_keys=True)}  "
                  f"({row['seconds']} s, child {row['wall']} s)", flush=True)


if __name__ == "__main__":
    main()
