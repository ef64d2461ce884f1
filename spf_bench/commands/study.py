"""``spf-bench study create|export|report|simulate``: the pairwise user study of the paper's Fig. 8."""

from __future__ import annotations

import argparse
from pathlib import Path

from spf_bench.core.errors import SpfError
from spf_bench.results.runs import load_runs
from spf_bench.study.db import default_db, ensure_schema, existing_db


def _common(parser, runs: bool = True) -> None:
    if runs:
        parser.add_argument("runs_dir", metavar="RUNS_DIR", type=Path, help="folder written by 'spf-bench run --out'")
    parser.add_argument("--db", type=Path, default=None, help="study database (default RUNS_DIR/spf-study.sqlite)")
    parser.add_argument("--study", default=None, metavar="NAME", help="which study (needed when the database holds several)")


def register(subparsers) -> None:
    parser = subparsers.add_parser("study", help="create, export, analyse or simulate a pairwise user study",
                                   description="The paper's user study (Fig. 8): raters compare --against with each "
                                               "competitor on OBC, TAR and AP.")
    sub = parser.add_subparsers(dest="study_command", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="write a study and its rater assignments into the database")
    create.add_argument("runs_dir", metavar="RUNS_DIR", type=Path)
    create.add_argument("--db", type=Path, default=None, help="study database (default RUNS_DIR/spf-study.sqlite)")
    create.add_argument("--name", default="main", help="the study's name (default main)")
    create.add_argument("--against", default="ours", help="the method every comparison includes (default ours)")
    create.add_argument("--methods", required=True, help="competitors, comma-separated, e.g. naive,lora")
    create.add_argument("--per-rater", type=int, default=30, help="comparisons per rater, gold checks not counted (default 30)")
    create.add_argument("--raters", type=int, default=32, help="rater links to create (default 32, as in the paper)")
    create.add_argument("--seed", type=int, default=0)
    create.set_defaults(func=run_create)
    export = sub.add_parser("export", help="write every vote as CSV")
    _common(export)
    export.add_argument("--out", type=Path, default=None, help="CSV file (default: standard output)")
    export.set_defaults(func=run_export)
    report = sub.add_parser("report", help="win rates, Bradley-Terry, agreement, gold checks and the chart")
    _common(report)
    report.add_argument("--out", type=Path, default=None, help="folder for tables and chart (default RUNS_DIR/study-report)")
    report.add_argument("--draws", type=int, default=2000, help="bootstrap draws (default 2000)")
    report.set_defaults(func=run_report)
    simulate = sub.add_parser("simulate", help="cast votes over HTTP from the synthetic world's ground truth")
    _common(simulate)
    simulate.add_argument("--raters", type=int, default=8, help="simulated raters to add (default 8)")
    simulate.add_argument("--noise", type=float, default=0.0, help="chance that a rater answers at random (default 0)")
    simulate.add_argument("--careless", type=int, default=0, help="extra raters who answer at random throughout")
    simulate.add_argument("--url", default=None, help="a running 'spf-bench serve' (default: start one on loopback)")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.set_defaults(func=run_simulate)


def run_create(args: argparse.Namespace) -> int:
    from spf_bench.study.sampling import create_study

    runs = load_runs(args.runs_dir)
    db = ensure_schema(args.db or default_db(args.runs_dir))
    competitors = [m.strip() for m in args.methods.split(",") if m.strip()]
    create_study(db, runs, args.runs_dir.resolve(), args.name, args.against, competitors, args.per_rater, args.raters, args.seed)
    print(f"Study '{args.name}' written to {db}: {args.raters} raters, {args.per_rater} comparisons each plus gold checks. "
          f"'spf-bench serve {args.runs_dir} --study {args.name}' prints their links.")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from spf_bench.study.analysis import load_votes
    from spf_bench.core.atomic import write_text_atomic

    _study, votes = load_votes(existing_db(args.db or default_db(args.runs_dir)), args.study)
    text = votes.to_csv(index=False)
    if args.out:
        write_text_atomic(args.out, text)
        print(f"{len(votes)} answers ({votes['comparison'].nunique() if len(votes) else 0} votes) written to {args.out}.")
    else:
        print(text, end="")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from spf_bench.study.summary import summarize, write_summary

    db = existing_db(args.db or default_db(args.runs_dir))
    summary = summarize(db, load_runs(args.runs_dir), args.study, draws=args.draws)
    if summary.votes.empty:
        raise SpfError(f"Study '{summary.study['name']}' has no votes yet; share the rater links first.")
    out = args.out or args.runs_dir / "study-report"
    write_summary(summary, out)
    for title, frame in (("Win rates", summary.rates), ("Bradley-Terry", summary.strengths),
                         ("Agreement", summary.agreement), ("Metric-human agreement", summary.metric_human)):
        print(f"\n{title}\n{frame.to_string(index=False, float_format=lambda v: f'{v:.3f}')}")
    print(f"\nRaters dropped by the gold checks: {', '.join(summary.dropped) or 'none'}.")
    print(f"Tables and chart written to {out}.")
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    from spf_bench.study.simulate import simulate_study

    db = existing_db(args.db or default_db(args.runs_dir))
    result = simulate_study(args.runs_dir, db, args.study, args.raters, args.noise, args.careless, args.url, args.seed)
    print(f"{result.votes} votes cast over HTTP by {result.raters} simulated raters in {result.seconds:.1f} s.")
    print(result.comparison.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0
