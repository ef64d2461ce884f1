"""What a stage-2 step costs next to a stage-1 step: time, peak memory and arithmetic.

For each configuration (stage 1 with and without the latent cache; stage 2 with
``re_decode_size`` full / clip, with and without the cache) this runs real training steps of
the suite's own loop at one batch size and prints, relative to an uncached stage-1 step:
- time ratio (median step time after a warm-up step),
- FLOP ratio (``torch.utils.flop_counter.FlopCounterMode`` over one step of the same shapes),
- time ratio / FLOP ratio (1.0 means no time spent beyond the method's own arithmetic),
- peak-memory ratio (CUDA: ``max_memory_allocated``; CPU: peak resident memory of a fresh
  worker process above its size before any network was built).
Each configuration runs in its own worker process so that one's memory cannot leak into
another's peak.

    python benchmarks/train_overhead.py --weights tiny
    python benchmarks/train_overhead.py --weights random --resolution 256 --steps 2
    python benchmarks/train_overhead.py --weights random --resolution 512 --device cuda --precision fp16
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = {
    "stage1": {"stage": 1, "latent_cache": False},
    "stage1+cache": {"stage": 1, "latent_cache": True},
    "stage2 re=full": {"stage": 2, "latent_cache": False, "re_decode_size": "full"},
    "stage2 re=clip": {"stage": 2, "latent_cache": False, "re_decode_size": "clip"},
    "stage2 re=clip+cache": {"stage": 2, "latent_cache": True, "re_decode_size": "clip"},
}
PAPER = {"time": 3.26 / 2.28, "memory": 28 / 23}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _write_images(folder: Path, resolution: int, count: int) -> Path:
    """A throw-away training set of noise images: the cost of a step does not depend on content."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (resolution, resolution, 3), dtype=np.uint8)).save(folder / f"{i}.png")
        lines.append(json.dumps({"file_name": f"{i}.png", "base_caption": "a photo of a young woman, long brown hair, in a park",
                                 "target_caption": "wearing round glasses", "category": "accessories"}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def run_worker(args) -> dict:
    """One configuration, in this process: build, warm up, time, count FLOPs, report."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(args.threads)
    rss_before = _rss_bytes()
    from spf_train.config import Stage1Config, Stage2Config
    from spf_train.data import PortraitDataset
    from spf_train.diffusion_task import DiffusionTask
    from spf_train.loop import TrainingLoop
    from spf_train.models import load_clip, load_pipeline
    from spf_train.stage2 import DualPathTask

    spec = CONFIGS[args.worker]
    tmp = Path(tempfile.mkdtemp(prefix="spf-overhead-"))
    dtype = torch.float32
    pipe = load_pipeline(args.weights, device=args.device, dtype=dtype)
    resolution = args.resolution or None
    data = _write_images(tmp / "data", resolution or 64, max(2, args.batch))
    common = dict(output_dir=str(tmp / "out"), train_batch_size=args.batch, max_steps=10_000, checkpoint_every=0,
                  latent_cache=spec["latent_cache"], mixed_precision=args.precision, base_model=args.weights,
                  clip_model=args.weights, resolution=resolution or 0, device="cpu" if args.device == "cpu" else "")
    if spec["stage"] == 1:
        config = Stage1Config(**common)
        task = DiffusionTask(config, pipe=pipe, dataset=PortraitDataset(data, config.resolution or 64), report=lambda m: None)
    else:
        config = Stage2Config(**common, re_decode_size=spec["re_decode_size"], init_from="original")
        clip = load_clip(args.weights, device=args.device)
        task = DualPathTask(config, pipe=pipe, dataset=PortraitDataset(data, config.resolution or 64), clip=clip, report=lambda m: None)
    loop = TrainingLoop(task, report=lambda m: None)
    cuda = loop.accelerator.device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    loop.train_step()  # warm-up: allocator, caches (latent cache, CLIP ground-truth embeddings)
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        loop.train_step()
        sync()
        times.append(time.perf_counter() - start)
    with FlopCounterMode(display=False) as counter:
        loop.train_step()
    if cuda:
        memory, memory_kind = torch.cuda.max_memory_allocated(), "cuda max_memory_allocated"
    else:
        memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
        memory_kind = "peak RSS above start"
    return {"config": args.worker, "time": statistics.median(times), "flops": counter.get_total_flops(),
            "memory": memory, "memory_kind": memory_kind, "device": str(loop.accelerator.device),
            "resolution": config.resolution or 64}


def _worker_result(args, name: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, "--weights", args.weights, "--batch", str(args.batch),
           "--steps", str(args.steps), "--precision", args.precision, "--device", args.device,
           "--threads", str(args.threads), "--resolution", str(args.resolution)]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"worker {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="tiny", choices=("tiny", "random", "pretrained"))
    parser.add_argument("--resolution", type=int, default=0, help="pixels; 0 = the model's native size")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per configuration (after one warm-up)")
    parser.add_argument("--precision", default="no", choices=("no", "fp16", "bf16"))
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of: " + ", ".join(CONFIGS))
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args)), flush=True)
        return 0

    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    if "stage1" not in names:
        names.insert(0, "stage1")
    results = {name: _worker_result(args, name) for name in names}
    base = results["stage1"]
    print(f"weights={args.weights} resolution={base['resolution']} batch={args.batch} precision={args.precision} "
          f"device={base['device']} steps={args.steps} memory={base['memory_kind']}")
    print(f"{'configuration':<22}{'s/step':>9}{'time x':>8}{'FLOP x':>8}{'time/FLOP':>10}{'memory x':>10}")
    for name, r in results.items():
        t, f, m = r["time"] / base["time"], r["flops"] / base["flops"], r["memory"] / base["memory"]
        r.update(time_ratio=t, flop_ratio=f, memory_ratio=m)
        print(f"{name:<22}{r['time']:>9.3f}{t:>8.2f}{f:>8.2f}{t / f:>10.2f}{m:>10.2f}")
    print(f"paper (FP32, 512 px): stage 2 / stage 1 time x{PAPER['time']:.2f}, memory x{PAPER['memory']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
