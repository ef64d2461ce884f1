"""``spf-bench``: the benchmark's command line (one module per sub-command under
``spf_bench.commands``; the shared machinery is in :mod:`spf_bench.core.cli`)."""

from __future__ import annotations

from spf_bench.core.cli import build_parser, run_cli

COMMAND_MODULES = ("weights", "triples", "run", "evaluate", "report", "synth", "serve", "study")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser("spf-bench", "spf_bench", COMMAND_MODULES, "Benchmark pure text-to-portrait customization.")
    return run_cli(parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
