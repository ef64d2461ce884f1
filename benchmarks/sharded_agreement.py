"""One process against an ``accelerate launch`` of N CPU processes: the same numbers, and the time.

Builds a tiny triple set, then runs ``spf-bench run --method base`` on it twice, each with a
cache folder of its own (the tiny zoo is shared): once as a plain single process, once under
``accelerate launch --multi_gpu --num_processes N`` (gloo on the CPU). Prints whether the
images are byte-identical, the largest difference per metric over ``per_pair.csv`` and over
``summary.json`` (values and interval ends), and the wall time of each command.

    python benchmarks/sharded_agreement.py --n 16 --processes 2
    python benchmarks/sharded_agreement.py --n 16 --threads 0   # the single process on every core

``--threads`` sets ``OMP_NUM_THREADS`` of the single process (default 1: what torchrun gives
each launched process); with 0 it keeps torch's default, every core, which shows what a
different thread count alone changes on the CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("LPIPS", "CLIP-I", "CLIP-T", "Seg-Cons", "ID")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cache(root: Path, zoo: Path) -> Path:
    root.mkdir(parents=True)
    (root / zoo.name).symlink_to(zoo, target_is_directory=True)
    return root


def _run(command: list[str], env: dict) -> tuple[float, str]:
    """Wall seconds of the command, and its scoring time as the main process reports it."""
    clock = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[:6])} ... failed:\n{done.stderr[-3000:]}")
    scoring = re.findall(r"scoring \d+ method\(s\) backbone by backbone in ([\d.]+) s", done.stdout + done.stderr)
    return time.perf_counter() - clock, (scoring[0] + " s") if scoring else "?"


def _largest(one: Path, two: Path) -> tuple[dict, dict]:
    def rows(folder):
        with open(folder / "per_pair.csv", newline="") as handle:
            return list(csv.DictReader(handle))

    per_pair = {m: max(abs(float(a[m]) - float(b[m])) for a, b in zip(rows(one), rows(two)) if a[m] and b[m])
                for m in METRICS}
    s1, s2 = (json.loads((f / "summary.json").read_text())["metrics"] for f in (one, two))
    summary = {m: max(abs(s1[m][k] - s2[m][k]) for k in ("value", "ci_low", "ci_high")) for m in METRICS}
    return per_pair, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="triples (default 16)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the single process; 0: torch's default")
    parser.add_argument("--keep", type=Path, help="folder for the runs (default: a temporary one)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="spf-sharded-"))
    sys.path.insert(0, str(ROOT))
    from spf_bench.core import paths
    from spf_bench.zoo.registry import TINY_FORMAT_VERSION

    # the caller's tiny zoo is shared by every run (built by the first one when missing)
    zoo = paths.cache_dir() / f"tiny-v{TINY_FORMAT_VERSION}"
    zoo.mkdir(parents=True, exist_ok=True)
    base_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cli = [sys.executable, "-m", "spf_bench.cli"]
    metrics = [a for m in METRICS for a in ("--metric", m)]
    triples = work / "triples"
    _run([*cli, "run", "--method", "base", "--n", str(args.n), "--steps", "2", "--out", str(work / "build"), "--no-eval",
          "--no-progress"], {**base_env, "SPF_CACHE": str(_cache(work / "cache-build", zoo)), "OMP_NUM_THREADS": "1"})
    (work / "build" / "triples").rename(triples)
    common = ["run", "--method", "base", "--triples", str(triples), *metrics, "--no-progress"]
    env_one = {**base_env, "SPF_CACHE": str(_cache(work / "cache-one", zoo))}
    if args.threads:
        env_one["OMP_NUM_THREADS"] = str(args.threads)
    else:
        env_one.pop("OMP_NUM_THREADS", None)
    seconds_one, scoring_one = _run([*cli, *common, "--out", str(work / "one")], env_one)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(args.processes),
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(_free_port()), "-m", "spf_bench.cli"]
    env_two = {**base_env, "SPF_CACHE": str(_cache(work / "cache-two", zoo)), "OMP_NUM_THREADS": "1"}
    seconds_two, scoring_two = _run([*launch, *common, "--out", str(work / "two")], env_two)
    one, two = work / "one" / "base", work / "two" / "base"
    names = sorted(p.name for p in (one / "images").glob("*.png"))
    differing = [n for n in names if (one / "images" / n).read_bytes() != (two / "images" / n).read_bytes()]
    per_pair, summary = _largest(one, two)
    print(f"{args.n} triples; single process with OMP_NUM_THREADS={args.threads or 'unset'}, "
          f"launch of {args.processes} processes with 1 thread each (in {work})")
    print(f"images byte-identical: {len(names) - len(differing)} of {len(names)}" + (f" (differ: {', '.join(differing)})" if differing else ""))
    for metric in METRICS:
        print(f"  {metric:9s} largest difference  per pair {per_pair[metric]:.3g}   summary {summary[metric]:.3g}")
    print(f"wall time: 1 process {seconds_one:.1f} s, {args.processes} processes {seconds_two:.1f} s "
          "(each: start, generation, scoring, leaderboard; the generation and feature caches start empty)")
    print(f"scoring (main process, shares included): 1 process {scoring_one}, {args.processes} processes {scoring_two}")


if __name__ == "__main__":
    main()
