"""``spf-bench report RUNS_DIR``: tables, leaderboard, significance tests and pictures in one folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from spf_bench.methods.registry import proposed_method
from spf_bench.results.report import ReportOptions, build_report
from spf_bench.core.errors import SpfError
from spf_bench.results.runs import load_runs
from spf_bench.results.tables import compare_methods
from spf_bench.study.summary import study_blocks


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write tables, the leaderboard and pictures of a results folder",
        description="Build a report (index.md and index.html, tables in CSV/Markdown/LaTeX/JSON, PNG figures) "
                    "from the method runs in RUNS_DIR.",
    )
    parser.add_argument("runs_dir", metavar="RUNS_DIR", type=Path, help="folder written by 'spf-bench run --out'")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: RUNS_DIR/report)")
    parser.add_argument("--with-paper", action="store_true",
                        help="show the paper's reported numbers as labelled reference rows (never ranked)")
    parser.add_argument("--triples", type=Path, default=None,
                        help="triple set folder with manifest.json and originals/ (for the image grids)")
    parser.add_argument("--sort", dest="sort_by", default=None, metavar="METRIC",
                        help="sort the leaderboard best-first by this metric, e.g. CLIP-T")
    parser.add_argument("--grid-triples", nargs="+", default=[], metavar="ID",
                        help="triple ids to draw comparison grids for (default: one per category)")
    parser.add_argument("--reference-method", default=None, metavar="METHOD",
                        help=f"method the significance tests compare every other one with (default: {proposed_method()})")
    parser.add_argument("--compare", nargs=2, default=None, metavar=("A", "B"),
                        help="also print the paired test of B against A per metric")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    options = ReportOptions(out=args.out, with_paper=args.with_paper, triples=args.triples, sort_by=args.sort_by,
                            grid_triples=list(args.grid_triples), reference_method=args.reference_method,
                            extra_blocks=lambda runs, folder: study_blocks(args.runs_dir, runs, folder))
    index = build_report(args.runs_dir, options)
    print(f"Report written to {index.parent} (open {index.name} or index.md).")
    if args.compare:
        runs = load_runs(args.runs_dir)
        for name in args.compare:
            if name not in runs:
                raise SpfError(f"Method '{name}' was not run in {args.runs_dir}; the runs are {', '.join(sorted(runs))}.")
        print(compare_methods(runs[args.compare[0]], runs[args.compare[1]]).to_string(index=False))
    return 0
