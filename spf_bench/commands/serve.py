"""``spf-bench serve RUNS_DIR``: the results browser and the study's rating pages on a local web server."""

from __future__ import annotations

import argparse
from pathlib import Path

from spf_bench.study.db import connect, default_db, ensure_schema, study_row


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="browse per-triple results and run the user study in a local web app",
        description="Serve the results browser for the runs in RUNS_DIR and the rating pages of the study "
                    "database beside them (created on first start).")
    parser.add_argument("runs_dir", metavar="RUNS_DIR", type=Path, help="folder written by 'spf-bench run --out'")
    parser.add_argument("--study", default=None, metavar="NAME", help="print the rater links of this study")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    parser.add_argument("--db", type=Path, default=None, help="study database (default RUNS_DIR/spf-study.sqlite)")
    parser.set_defaults(func=run_serve)


def rater_links(db: Path, study: str, base: str) -> list[str]:
    with connect(db) as connection:
        row = study_row(connection, study)
        raters = connection.execute("SELECT label, token FROM raters WHERE study_id=? ORDER BY id", (row["id"],)).fetchall()
    return [f"  {r['label']}: {base}/rate/{r['token']}" for r in raters]


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from spf_bench.serve.app import create_app

    db = ensure_schema(args.db or default_db(args.runs_dir))
    app = create_app(args.runs_dir, db)
    base = f"http://{args.host}:{args.port}"
    if args.study:
        print(f"Rater links of study '{args.study}':", *rater_links(db, args.study, base), sep="\n")
    print(f"Serving {args.runs_dir} (study database {db}); open {base}/ in a browser. Ctrl-C stops.", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
