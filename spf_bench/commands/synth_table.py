"""``spf-bench synth table``: the world Tab. 1 (see :mod:`spf_bench.lab.table`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spf_bench.commands.synth_options import add_lab_options
from spf_bench.core.errors import SpfError


def register(sub) -> None:
    from spf_bench.lab.methods import LAB_METHODS, TAB1_METHODS  # a light table: no torch import

    table = sub.add_parser("table", help="a world Tab. 1: every method and ablation over several training seeds, "
                                         "compared with ours and with the paper (resumable)")
    table.add_argument("--out", type=Path, required=True, help="folder for one lab per seed, records.csv, table.json and table.md")
    add_lab_options(table, methods_default=",".join(TAB1_METHODS),
                    methods_help=f"comma-separated lab methods, 'ours' among them, of: {', '.join(LAB_METHODS)} (default: Tab. 1 and the mask variants)",
                    prompts_default=400, prompts_help="base prompts each model draws per seed (default 400)")
    table.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds (default 0,1,2)")
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

    from spf_bench.commands.synth_options import lab_design, metric_list, stage2_budget
    from spf_bench.lab.experiment import LabConfig
    from spf_bench.lab.methods import check_methods
    from spf_bench.lab.table import LabTable, TableConfig
    from spf_bench.metrics import METRIC_ORDER
    from spf_bench.world.ship import load_shipped_oracle
    from spf_bench.zoo import synth_source

    torch.set_num_threads(max(1, args.threads))
    design = lab_design(args)
    for flag, value, least in (("--steps", args.steps, 1), ("--train-images", design["train_images"], 1), ("--prompts", args.prompts, 1)):
        if value < least:
            raise SpfError(f"{flag} must be at least {least}, got {value}.")
    methods = check_methods(tuple(m.strip() for m in args.methods.split(",") if m.strip()))
    lab = LabConfig(**design, **stage2_budget(args), steps=args.steps, prompts=args.prompts, methods=methods,
                    metrics=metric_list(args.metrics, METRIC_ORDER))
    for name in ("sd15", "clip"):
        synth_source.verify(name)
    table = LabTable(args.out, TableConfig(lab, _seeds(args.seeds)), synth_source.folder("sd15"), synth_source.folder("clip"))
    result = table.run(load_shipped_oracle())
    print(json.dumps({k: v for k, v in result.get("mask_order", {}).items() if isinstance(v, bool)}, indent=1))
    if "verdict" in result:
        print(json.dumps({k: v for k, v in result["verdict"].items() if not isinstance(v, dict)}, indent=1))
    print(f"table: {Path(args.out) / 'table.md'} (and table.json); records: {Path(args.out) / 'records.csv'}")
    return 0
