"""Images per second of the benchmark's generator against a plain diffusers loop.

Side by side in one run, on the same device, sampler, steps, guidance, size and prompts:
1. the reference: ``StableDiffusionPipeline`` as a user would script it, called once per
   prompt with default options (float32, one image per call, PIL output);
2. ours: :func:`spf_bench.generation.sampling.render`, batched across triples with one seeded generator
   per image, in the chosen precision (float16 by default on a GPU).
Each side gets one untimed warm-up call, then the sides take turns for ``--repeats`` timed
rounds and each keeps its best; model loading is excluded (both models are held at once). Printed as one JSON line:
images/s of both, the speed-up, and (on the CPU, in float32, where both draw the same noise)
the largest pixel difference between the two sides' images, which should be a rounding step.

    python benchmarks/generation_throughput.py --weights tiny --n 16
    python benchmarks/generation_throughput.py --weights random --n 2 --steps 2
    python benchmarks/generation_throughput.py --weights random --device cuda --n 32 --steps 20
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from spf_bench.generation.base_model import dtype_name, parse_device, parse_dtype
from spf_bench.triples.captions import compose_triples
from spf_bench.generation.sampling import GenerationSettings, Job, render, scheduler_for
from spf_bench.methods.registry import build_method
from spf_bench.generation.protocol import settings_for


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="tiny", help="tiny or random (the real SD1.5 architecture, seeded)")
    p.add_argument("--n", type=int, default=None, help="images per side (default: 16 on tiny, 2 on random)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the protocol's for the weights)")
    p.add_argument("--size", type=int, default=None, help="image size (default: 64 on tiny, 512 on random)")
    p.add_argument("--sampler", default="ddim")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default=None, help="cpu or cuda (default: a GPU if there is one)")
    p.add_argument("--dtype", default=None, help="our side's dtype (default: float16 on a GPU, float32 on the CPU)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--repeats", type=int, default=2, help="timed rounds per side, taking turns; the best counts")
    return p.parse_args(argv)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reference_images(pipe, jobs: list[Job], settings: GenerationSettings, device: torch.device) -> tuple[float, list]:
    images = []
    _sync(device)
    start = time.perf_counter()
    for job in jobs:
        generator = torch.Generator("cpu").manual_seed(job.seed)
        images.append(pipe(job.prompt, num_inference_steps=settings.steps, guidance_scale=settings.guidance,
                           height=settings.height, width=settings.width, generator=generator).images[0])
    _sync(device)
    return time.perf_counter() - start, [np.asarray(i) for i in images]


def our_images(model, jobs: list[Job], settings: GenerationSettings, batch_size: int, device: torch.device) -> tuple[float, list]:
    _sync(device)
    start = time.perf_counter()
    images = [img for _batch, out in render(model, jobs, settings, batch_size) for img in out]
    _sync(device)
    return time.perf_counter() - start, images


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = parse_device(args.device)
    dtype = parse_dtype(args.dtype or ("float16" if device.type == "cuda" else "float32"))
    n = args.n or (16 if args.weights == "tiny" else 2)
    settings = settings_for(args.weights, args.sampler, args.steps, None, args.size)
    jobs = [Job(t.id, t.base_caption, t.seed, t.target_caption) for t in compose_triples(n, seed=0)]
    warm = [Job("warm", jobs[0].base_caption, 1, jobs[0].target_caption)]

    reference = build_method("base", args.weights, device=device, dtype=torch.float32).pipe
    reference.scheduler = scheduler_for(reference, settings.sampler)  # same sampler on both sides
    reference.set_progress_bar_config(disable=True)
    ours = build_method("base", args.weights, device=device, dtype=dtype)
    reference_images(reference, warm, settings, device)
    our_images(ours, warm, settings, args.batch_size, device)
    # The two sides take turns and each keeps its best time, so a burst of other load on a
    # shared machine does not land on one side only.
    ref_seconds = our_seconds = float("inf")
    for _ in range(args.repeats):
        seconds, ref_out = reference_images(reference, jobs, settings, device)
        ref_seconds = min(ref_seconds, seconds)
        seconds, our_out = our_images(ours, jobs, settings, args.batch_size, device)
        our_seconds = min(our_seconds, seconds)

    result = {
        "weights": args.weights, "device": str(device), "device_name": _device_name(device), "n": n,
        "settings": settings.to_dict(), "batch_size": args.batch_size, "our_dtype": dtype_name(dtype),
        "reference_dtype": "float32", "threads": torch.get_num_threads(), "repeats": args.repeats,
        "reference_images_per_s": round(n / ref_seconds, 4), "our_images_per_s": round(n / our_seconds, 4),
        "speedup": round(ref_seconds / our_seconds, 3),
    }
    if dtype == torch.float32:
        result["max_pixel_difference"] = int(max(np.abs(a.astype(int) - b.astype(int)).max() for a, b in zip(ref_out, our_out)))
    print(json.dumps(result))
    return result


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
