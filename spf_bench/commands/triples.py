"""``spf-bench triples``: build (or finish building) a test triple set, and check one."""

from __future__ import annotations

import argparse
from pathlib import Path

from spf_bench.core.cli import add_device_argument
from spf_bench.generation.base_model import parse_device, parse_dtype
from spf_bench.triples.captions import read_user_triples
from spf_bench.triples.compose import compose_for
from spf_bench.generation.protocol import WEIGHT_SOURCES, per_source, settings_for, source_record
from spf_bench.triples.triple_set import build_triple_set, load_triple_set


def register(subparsers) -> None:
    p = subparsers.add_parser("triples", help="build or check a test triple set")
    sub = p.add_subparsers(dest="triples_command", required=True, metavar="ACTION")
    b = sub.add_parser("build", help="generate original portraits and write the manifest (resumable)")
    b.add_argument("--out", required=True, type=Path, help="folder of the set (a killed build resumes here)")
    b.add_argument("--n", type=int, help=f"number of composed triples (default: {per_source(lambda r: r.n_triples)})")
    b.add_argument("--from", dest="source_file", type=Path, help="your own triples: CSV or JSONL with "
                   "id, category, base_caption, target_caption[, seed] (instead of composing them)")
    b.add_argument("--seed", type=int, default=0, help="seed of the composed captions and of per-triple seeds")
    add_generation_arguments(b)
    b.set_defaults(func=build)
    c = sub.add_parser("check", help="verify a set's images against its manifest")
    c.add_argument("dir", type=Path)
    c.set_defaults(func=check)


def add_generation_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default="tiny", help=f"base model weights: {', '.join(WEIGHT_SOURCES)} (default: tiny)")
    p.add_argument("--steps", type=int, help=f"sampling steps (default: {per_source(lambda r: r.settings.steps)})")
    p.add_argument("--guidance", type=float, help="classifier-free guidance scale (default: 7.5)")
    p.add_argument("--size", type=int, help=f"image height and width in pixels (default: {per_source(lambda r: r.settings.height)})")
    p.add_argument("--sampler", help="ddim, pndm, euler or dpm++ (default: ddim)")
    p.add_argument("--batch-size", type=int, default=8, help="images per batch")
    add_device_argument(p)
    p.add_argument("--dtype", default="float32", help="float32, float16 or bfloat16 (default: float32)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def build(args: argparse.Namespace) -> int:
    if args.source_file is not None:
        triples = read_user_triples(args.source_file, seed=args.seed)
    else:
        triples = compose_for(args.weights, args.n if args.n is not None else source_record(args.weights).n_triples, seed=args.seed)
    settings = settings_for(args.weights, args.sampler, args.steps, args.guidance, args.size)
    policy = (f"seeds from {args.source_file.name} (missing ones derived from seed {args.seed} and the id)"
              if args.source_file else f"composed captions and per-triple seeds from seed {args.seed}")
    ts = build_triple_set(args.out, triples, weights=args.weights, settings=settings, seed_policy=policy,
                          batch_size=args.batch_size, device=parse_device(args.device), dtype=parse_dtype(args.dtype),
                          progress=not args.no_progress)
    print(f"{len(ts.triples)} triples in {ts.root} (set sha256 {ts.sha256[:12]})")
    return 0


def check(args: argparse.Namespace) -> int:
    ts = load_triple_set(args.dir, verify=True)
    print(f"{args.dir}: {len(ts.triples)} triples, every original matches its sha256")
    return 0
