"""``spf-bench run``: generate and score one or more methods, and write the leaderboard.

With nothing but ``--method`` on the tiny default it builds a small triple set in
``OUT/triples``, trains the small checkpoints the methods need (cached), generates, scores
with every default metric and writes ``OUT/leaderboard.csv`` / ``.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spf_bench.core.cli import add_device_argument
from spf_bench.generation.base_model import parse_device
from spf_bench.benchmark import RunRequest, run_benchmark
from spf_bench.methods.training import QuickTraining
from spf_bench.methods.checkpoint_files import parse_checkpoint_args, read_methods_file
from spf_bench.methods.registry import known_methods
from spf_bench.generation.protocol import WEIGHT_SOURCES, per_source, quick_training_sources, settings_for
from spf_bench.metrics import registry


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="generate and score methods; write OUT/leaderboard.csv and .md")
    p.add_argument("--method", action="append", required=True, metavar="NAME",
                   help=f"method to run (repeatable); one of: {', '.join(known_methods())}")
    p.add_argument("--triples", type=Path, help="triple set folder (default: build a small one in OUT/triples)")
    p.add_argument("--weights", default="tiny", help=f"base model weights: {', '.join(WEIGHT_SOURCES)} (default: tiny; the README's main command uses synth)")
    p.add_argument("--out", type=Path, default=Path("runs"), help="results folder (default: runs/)")
    p.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                   help=f"checkpoint of a method (repeatable); on {' and '.join(quick_training_sources())}, missing ones are trained and cached")
    p.add_argument("--methods-file", type=Path, help="YAML, JSON or TOML file mapping method names to checkpoints")
    p.add_argument("--reconstruction", action="store_true",
                   help="also generate from the base caption alone and score it against the originals (doubles the cost)")
    p.add_argument("--n", type=int, help=f"triples in the set built when --triples is not given (default: {per_source(lambda r: r.n_triples)})")
    p.add_argument("--seed", type=int, default=0, help="seed of the set built when --triples is not given")
    p.add_argument("--steps", type=int, help="sampling steps of a set built here (a given set brings its own)")
    p.add_argument("--size", type=int, help="image size of a set built here")
    p.add_argument("--batch-size", type=int, default=8, help="images per generation batch")
    add_device_argument(p)
    p.add_argument("--dtype", help="float32, float16 or bfloat16 (default: the triple set's)")
    p.add_argument("--train-steps", type=int, default=QuickTraining.steps,
                   help=f"optimizer steps of automatically trained {' / '.join(quick_training_sources())} checkpoints (default: the source's)")
    p.add_argument("--metric", action="append", dest="metrics", metavar="NAME",
                   help="score only these metrics (repeatable; " + registry.help_text() + ")")
    p.add_argument("--no-world-metrics", action="store_true",
                   help="on synth, leave out the world's exact metrics (Target-Acc, Attr-Pres, ID-Pres)")
    p.add_argument("--no-eval", action="store_true", help="generate only; skip scoring and the leaderboard")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--max-memory", type=float, metavar="GB",
                   help="scoring's batch sizes shrink so each metric network fits in GB; a run that cannot fit "
                        "is refused before anything large is loaded")
    p.add_argument("--scoring", choices=("backbone", "resident"), default="backbone",
                   help="backbone (default): every method generated first, then one metric network in memory at a "
                        "time, each loaded once; resident: each method scored after its generation with every "
                        "metric network kept loaded")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    checkpoints = read_methods_file(args.methods_file) if args.methods_file else {}
    checkpoints.update(parse_checkpoint_args(args.checkpoint))  # the command line wins over the file
    device = parse_device(args.device)
    request = RunRequest(
        methods=args.method, out=args.out, weights=args.weights, triples=args.triples, checkpoints=checkpoints,
        reconstruction=args.reconstruction, n_triples=args.n, triple_seed=args.seed,
        settings=settings_for(args.weights, steps=args.steps, size=args.size), batch_size=args.batch_size,
        device=device, dtype=args.dtype, quick=QuickTraining(steps=args.train_steps), evaluate=not args.no_eval,
        eval_options=_eval_options(args), progress=not args.no_progress, scoring=args.scoring,
        max_memory_gb=args.max_memory,
    )
    run_benchmark(request)
    main = request.processes is None or request.processes.is_main_process  # under a launch, the main one wrote it
    if not args.no_eval and main:
        print(f"leaderboard: {args.out / 'leaderboard.md'} and {args.out / 'leaderboard.csv'}")
    return 0


def _eval_options(args: argparse.Namespace) -> dict:
    options = {"metrics": tuple(args.metrics)} if args.metrics else {}
    if args.no_world_metrics:
        options["world_metrics"] = False
    return options
