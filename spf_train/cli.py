"""``spf-train``: training SPF-Portrait (both stages) and its baselines.

Each sub-command lives in ``spf_train.commands.<name>`` with ``register(subparsers)``.
"""

from __future__ import annotations

from spf_bench.core.cli import build_parser, run_cli

COMMAND_MODULES = ("stage1", "stage2", "lora", "adalora", "sfcm", "tokencompose")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser("spf-train", "spf_train", COMMAND_MODULES, "Train SPF-Portrait and its baselines.")
    return run_cli(parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
