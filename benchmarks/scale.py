"""How time, memory and disk grow with the size of the triple set, and a paper-scale estimate.

For each size N the whole pipeline runs in a fresh process on tiny weights, with its own
feature and generation caches (the tiny zoo is shared): triple build, generation (the base
method), scoring, leaderboard, report. Printed per stage: time per triple and the process's
peak resident memory during the stage; then the feature cache, the generation cache and the
run folder in bytes per triple. The networks the metrics need are loaded before the clock
starts (a fixed cost, printed apart). Target: from 100 triples up, per-triple time and peak
memory stay within 1.3x of each other.

    python benchmarks/scale.py --sizes 10,100,1000 --steps 2
    python benchmarks/scale.py --sizes 100,1000 --metric LPIPS --metric CLIP-I --steps 2
    python benchmarks/scale.py --estimate --gpu H100      # FLOP-based GPU-hours of the paper's protocol

With ``SPF_SCALE_PROFILE=1`` each size also leaves a cProfile dump, ``n<N>/profile.out`` under
``--keep``, to find what grows faster than the set.

``--estimate`` is documented in ``benchmarks/scale_estimate.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES = ("triples", "generation", "scoring", "leaderboard", "report")


class PeakMemory:
    """Peak resident memory of this process over a stretch of code, sampled every 20 ms
    (getrusage's maximum only ever grows, so it cannot tell one stage's peak from another's)."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(0.02)

    def __enter__(self):
        self.peak = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder``, each hard-linked file counted once."""
    seen, total = set(), 0
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            stat = path.stat()
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
    return total


def run_one(n: int, work: Path, metrics: list[str], steps: int, batch_size: int) -> dict:
    """The whole pipeline on ``n`` triples; returns per-stage seconds and peak memory."""
    import torch

    torch.set_num_threads(1)  # the tiny networks' ops are too small for a second thread
    from spf_bench.benchmark import RunRequest, _score, _triple_set, run_method
    from spf_bench.evaluation.evaluator import zoo_networks_for
    from spf_bench.generation.sampling import GenerationSettings
    from spf_bench.results.report import ReportOptions, build_report
    from spf_bench.results.tables import write_leaderboard
    from spf_bench.zoo import load

    out = work / "runs"
    settings = GenerationSettings(sampler="ddim", steps=steps, guidance=7.5, height=64, width=64)
    req = RunRequest(methods=["base"], out=out, weights="tiny", n_triples=n, settings=settings, batch_size=batch_size,
                     eval_options={"metrics": tuple(metrics)}, progress=False, report=lambda m: None)
    clock = time.perf_counter()
    networks = {name: load(name, source="tiny") for name in zoo_networks_for(metrics)}
    load("sd15", source="tiny")
    result: dict = {"n": n, "load_seconds": time.perf_counter() - clock, "stages": {}, "metrics": metrics, "steps": steps}

    def stage(name, fn):
        with PeakMemory() as memory:
            start = time.perf_counter()
            value = fn()
            seconds = time.perf_counter() - start
        result["stages"][name] = {"seconds": seconds, "peak_rss": memory.peak}
        print(f"  n={n:>5} {name:<11} {seconds:9.2f} s  {1000 * seconds / n:8.1f} ms/triple  "
              f"peak {memory.peak / 2**20:7.0f} MiB", flush=True)
        return value

    ts = stage("triples", lambda: _triple_set(req, out))
    req.evaluate = False
    record = stage("generation", lambda: run_method(req, ts, "base", out / "base", networks))
    req.evaluate = True
    stage("scoring", lambda: _score(req, ts, out / "base", record, networks))
    stage("leaderboard", lambda: write_leaderboard(out))
    stage("report", lambda: build_report(out, ReportOptions()))
    cache = Path(os.environ["SPF_CACHE"])
    result["bytes"] = {"feature cache": folder_bytes(cache / "features"), "generation cache": folder_bytes(cache / "generations"),
                       "run folder": folder_bytes(out)}
    return result


def _child_cache(work: Path, shared: Path) -> Path:
    """A fresh cache folder for one size, sharing the (read-only) tiny zoo."""
    cache = work / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    for entry in shared.glob("tiny-v*"):
        link = cache / entry.name
        if not link.exists():
            link.symlink_to(entry.resolve())
    return cache


def measure(sizes: list[int], metrics: list[str], steps: int, batch_size: int, keep: Path | None) -> list[dict]:
    from spf_bench.core import paths

    shared = paths.cache_dir()
    from spf_bench import zoo

    zoo.load("sd15", source="tiny")  # build the tiny zoo once, outside every measurement
    results = []
    with tempfile.TemporaryDirectory(prefix="spf-scale-") as tmp:
        base = keep or Path(tmp)
        for n in sizes:
            work = base / f"n{n}"
            env = {**os.environ, "SPF_CACHE": str(_child_cache(work, shared)), "OMP_NUM_THREADS": "1"}
            command = [sys.executable, __file__, "--child", str(n), "--work", str(work), "--steps", str(steps),
                       "--batch-size", str(batch_size)] + [f"--metric={m}" for m in metrics]
            subprocess.run(command, env=env, check=True)
            results.append(json.loads((work / "result.json").read_text()))
    return results


def print_table(results: list[dict]) -> None:
    print("\nper triple (ms) and peak resident memory (MiB) per stage")
    print(f"{'stage':<12}" + "".join(f"{'n=' + str(r['n']):>24}" for r in results))
    for name in STAGES:
        cells = [r["stages"][name] for r in results]
        print(f"{name:<12}" + "".join(f"{1000 * c['seconds'] / r['n']:>12.1f}{c['peak_rss'] / 2**20:>12.0f}"
                                        for c, r in zip(cells, results)))
    total = [sum(s["seconds"] for s in r["stages"].values()) / r["n"] for r in results]
    print(f"{'all stages':<12}" + "".join(f"{1000 * t:>12.1f}{max(s['peak_rss'] for s in r['stages'].values()) / 2**20:>12.0f}"
                                            for t, r in zip(total, results)))
    print("\nbytes per triple on disk")
    for key in results[0]["bytes"]:
        print(f"{key:<18}" + "".join(f"{r['bytes'][key] / r['n']:>14.0f}" for r in results))
    print("(network loading, outside the stages: " + ", ".join(f"{r['load_seconds']:.1f} s" for r in results) + ")")
    large = [r for r in results if r["n"] >= 100]
    if len(large) >= 2:
        per = [sum(s["seconds"] for s in r["stages"].values()) / r["n"] for r in large]
        peak = [max(s["peak_rss"] for s in r["stages"].values()) for r in large]
        print(f"\nfrom n={large[0]['n']} to n={large[-1]['n']}: per-triple time ratio max/min {max(per) / min(per):.2f}, "
              f"peak memory ratio {max(peak) / min(peak):.2f} (target <= 1.3 each)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100", help="comma-separated set sizes (the issue's are 10,100,1000,5000)")
    parser.add_argument("--metric", action="append", dest="metrics", help="score only these metrics (default: all eight)")
    parser.add_argument("--steps", type=int, default=10, help="sampling steps of the tiny sets (default: tiny's 10)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--keep", type=Path, help="keep every size's runs and caches in this folder")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    parser.add_argument("--estimate", action="store_true", help="print the paper-scale GPU-hour estimate instead")
    parser.add_argument("--gpu", default="H100", help="GPU class for --estimate (A100, H100, H200)")
    parser.add_argument("--utilisation", type=float, default=0.40, help="for --estimate: assumed share of peak reached")
    parser.add_argument("--shares", type=Path, help="for --estimate: a --json file whose measured stage shares to print beside")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from spf_bench.metrics import METRIC_ORDER

    metrics = args.metrics or list(METRIC_ORDER)
    if args.child:
        if os.environ.get("SPF_SCALE_PROFILE"):
            import cProfile

            profiler = cProfile.Profile()
            result = profiler.runcall(run_one, args.child, args.work, metrics, args.steps, args.batch_size)
            profiler.dump_stats(str(args.work / "profile.out"))
        else:
            result = run_one(args.child, args.work, metrics, args.steps, args.batch_size)
        (args.work / "result.json").write_text(json.dumps(result, indent=1))
        return 0
    if args.estimate:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from scale_estimate import print_estimate

        shares = json.loads(args.shares.read_text()) if args.shares else None
        print_estimate(args.gpu, shares, args.utilisation)
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(f"sizes {sizes}, metrics {', '.join(metrics)}, {args.steps} sampling steps, batch {args.batch_size}, tiny weights")
    results = measure(sizes, metrics, args.steps, args.batch_size, args.keep)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
