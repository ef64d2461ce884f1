"""``spf-bench evaluate``: score any folder of customized portraits named by triple id."""

from __future__ import annotations

import argparse
from pathlib import Path

from spf_bench.core.cli import add_device_argument
from spf_bench.core.processes import distributed_state, process_device
from spf_bench.core.errors import SpfError
from spf_bench.generation.base_model import parse_device
from spf_bench.metrics import registry


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score customized portraits against a triple set",
        description="Score a folder of customized portraits (<id>.png, made by any method) against a triple set; "
                    "writes per_pair.csv and summary.json. Metrics of one weight source alone (the synthetic "
                    "world's exact metrics under --weights synth) are scored too, each beside the chosen metrics "
                    "of its group (naming one in --metrics scores exactly the metrics named). Options left out "
                    "take the weight source's protocol defaults, as 'spf-bench run' does, so both commands "
                    "score the same images alike.")
    parser.add_argument("--triples", type=Path, required=True, help="triple-set folder (manifest.json + originals/)")
    parser.add_argument("--images", type=Path, required=True, help="folder of <id>.png, or a method run folder OUT/<method>")
    parser.add_argument("--weights", default="tiny", help="weight source of the metric networks: tiny, random, pretrained or synth")
    parser.add_argument("--out", type=Path, default=None, help="where per_pair.csv and summary.json go (default: the method run folder)")
    parser.add_argument("--metrics", default=None, help="comma-separated metrics to score (" + registry.help_text() + ")")
    add_device_argument(parser)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    parser.add_argument("--fid-bootstrap", type=int, default=100, help="resamples for FID's interval (each recomputes FID)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resamples")
    parser.add_argument("--clip-t-caption", choices=("target", "full"), default="target",
                        help="caption CLIP-T compares with: the target caption c_t (default) or the full caption")
    parser.add_argument("--sam-points", type=int, default=None,
                        help="Seg-Cons point grid per side (default: the weight source's: 4 on tiny and synth, else 16)")
    parser.add_argument("--method", default=None, help="method name recorded in summary.json (default: the folder's name)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    parser.add_argument("--no-world-metrics", action="store_true",
                        help="under --weights synth, do not add the world's exact metrics (e.g. for captions not the world's)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--max-memory", type=float, metavar="GB",
                        help="score one metric network at a time with batches shrunk to fit GB (refused up front "
                             "when a network cannot fit)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spf_bench.evaluation.evaluator import evaluate_run

    chosen = {}
    if args.metrics is not None:
        chosen["metrics"] = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
        if not chosen["metrics"]:
            raise SpfError("--metrics names no metric.")
    state = distributed_state(parse_device(args.device))
    device = process_device(state, parse_device(args.device))
    options = dict(**chosen, device=str(device), batch_size=args.batch_size,
                   n_bootstrap=args.bootstrap, fid_bootstrap=args.fid_bootstrap, seed=args.seed,
                   clip_t_caption=args.clip_t_caption, sam_points_per_side=args.sam_points,
                   use_cache=not args.no_cache, world_metrics=not args.no_world_metrics)
    if state is not None and state.num_processes > 1 and not _fill_share(args, options, state):
        return 0  # not the main process: its share is in the cache, the main process scores and writes
    if args.max_memory is not None:
        result = _evaluate_within(args, options)
    else:
        result = evaluate_run(args.triples, args.images, weights=args.weights, out_dir=args.out, method=args.method,
                              **options)
    from spf_bench.results.render import fixed

    for name, entry in result.summary["metrics"].items():
        value, low, high = entry["value"], entry["ci_low"], entry["ci_high"]
        shown = "n/a" if value is None else fixed(value, 4)
        interval = "" if low is None else f"  [{fixed(low, 4)}, {fixed(high, 4)}]"
        print(f"{name:10s} {shown}{interval}  (n={entry['n']})")
    if result.summary.get("face_found_rate") is not None:
        print(f"face found in both images: {result.summary['face_found_rate']:.1%} of pairs")
    print(f"wrote {result.out_dir / 'per_pair.csv'} and {result.out_dir / 'summary.json'}")
    return 0


def _evaluate_within(args: argparse.Namespace, options: dict):
    """The same scores, one metric network in memory at a time, batches sized to ``--max-memory``."""
    from spf_bench.evaluation.backbone_major import score_jobs, scoring_job
    from spf_bench.evaluation.evaluator import default_out_dir, write_outputs

    job = scoring_job(args.triples, args.images, args.weights, method=args.method, **options)
    result = score_jobs([job], device=job.options.device, max_memory_gb=args.max_memory, progress=not args.no_progress)[0]
    result.out_dir = Path(args.out) if args.out is not None else default_out_dir(Path(job.identity["images"]))
    write_outputs(result.out_dir, result.per_pair_rows, result.summary)
    return result


def _fill_share(args: argparse.Namespace, options: dict, state) -> bool:
    """Under ``accelerate launch``: this process's share of the backbone passes, into the
    feature cache (:mod:`spf_bench.evaluation.sharded`). True on the main process."""
    from spf_bench.core.agreement import check_agreement
    from spf_bench.evaluation.backbone_major import scoring_job
    from spf_bench.evaluation.sharded import fill_share, share_report

    job = scoring_job(args.triples, args.images, args.weights, method=args.method, **options)
    identity = {k: v for k, v in job.identity.items() if k != "date"}
    check_agreement({"scoring job": identity, "options": {k: str(v) for k, v in options.items() if k != "device"},
                     "out": str(args.out.resolve()) if args.out is not None else None}, "this evaluation launch")
    counts = fill_share([job], state, device=job.options.device, max_memory_gb=args.max_memory,
                        progress=not args.no_progress and state.is_main_process)
    print(share_report(counts, state), flush=True)
    return state.is_main_process
