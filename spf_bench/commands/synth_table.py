"""``spf-bench synth table``: the world Tab. 1 (see :mod:`spf_bench.lab.table`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spf_bench.core.errors import SpfError


def register(sub) -> None:
    from spf_bench.lab.methods import LAB_METHODS, TAB1_METHODS  # a light table: no torch import

    table = sub.add_parser("table", help="a world Tab. 1: every method and ablation over several training seeds, "
                                         "compared with ours and with the paper (resumable)")
    table.add_argument("--out", type=Path, required=True, help="folder for one lab per seed, records.csv, table.json and table.md")
    table.add_argument("--target", default="glasses=yes", help="ATTRIBUTE=VALUE every fine-tuning image shows (default glasses=yes)")
    table.add_argument("--spurious", default="background=green", help="ATTRIBUTE=VALUE correlated with it (default background=green)")
    table.add_argument("--methods", default=",".join(TAB1_METHODS),
                       help=f"comma-separated lab methods, 'ours' among them, of: {', '.join(LAB_METHODS)} (default: Tab. 1 and the mask variants)")
    table.add_argument("--metrics", default="all", help="comma-separated suite metrics, or 'all' (default) or 'none'")
    table.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds (default 0,1,2)")
    table.add_argument("--steps", type=int, default=300, help="optimizer steps of every fine-tune (default 300)")
    table.add_argument("--train-images", type=int, default=64, help="images in the fine-tuning set (default 64)")
    table.add_argument("--prompts", type=int, default=400, help="base prompts each model draws per seed (default 400)")
    table.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    table.add_argument("--no-progress", action="store_true", help="hide progress bars")
    table.set_defaults(func=run_table)


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise SpfError(f"--seeds '{text}' is not a comma-separated list of whole numbers.") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise SpfError(f"--seeds '{text}' must list distinct seeds, zero or more.")
    return seeds


def run_table(args: argparse.Namespace) -> int:
    import torch

    from spf_bench.commands.synth_options import attribute_pair, metric_list
    from spf_bench.lab.experiment import LabConfig
    from spf_bench.lab.methods import check_methods
    from spf_bench.lab.table import LabTable, TableConfig
    from spf_bench.metrics import METRIC_ORDER
    from spf_bench.world.sets import Correlation
    from spf_bench.world.ship import load_shipped_oracle
    from spf_bench.zoo import synth_source

    torch.set_num_threads(max(1, args.threads))
    target, spurious = attribute_pair(args.target, "--target"), attribute_pair(args.spurious, "--spurious")
    if target[0] == spurious[0]:
        raise SpfError("--target and --spurious must name two different attributes.")
    for flag, value, least in (("--steps", args.steps, 1), ("--train-images", args.train_images, 1), ("--prompts", args.prompts, 1)):
        if value < least:
            raise SpfError(f"{flag} must be at least {least}, got {value}.")
    methods = check_methods(tuple(m.strip() for m in args.methods.split(",") if m.strip()))
    lab = LabConfig(Correlation(*target, *spurious), train_images=args.train_images, steps=args.steps,
                    prompts=args.prompts, methods=methods, metrics=metric_list(args.metrics, METRIC_ORDER))
    for name in ("sd15", "clip"):
        synth_source.verify(name)
    table = LabTable(args.out, TableConfig(lab, _seeds(args.seeds)), synth_source.folder("sd15"), synth_source.folder("clip"))
    result = table.run(load_shipped_oracle())
    print(json.dumps({k: v for k, v in result.get("mask_order", {}).items() if isinstance(v, bool)}, indent=1))
    print(f"table: {Path(args.out) / 'table.md'} (and table.json); records: {Path(args.out) / 'records.csv'}")
    return 0
