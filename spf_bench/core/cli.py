"""What both command lines share: sub-commands from modules, quiet libraries, and user
errors (:class:`~spf_bench.core.errors.SpfError`) printed as their one sentence, exit code 2.

Each sub-command lives in its own module under ``<package>.commands`` and exposes
``register(subparsers)``, which adds its parser and sets ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from spf_bench.core.errors import SpfError
from spf_bench.core.progress import progress_shown


def build_parser(prog: str, package: str, modules: tuple[str, ...], description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in modules:
        try:
            module = importlib.import_module(f"{package}.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{package}.commands.{name}":
                continue  # command not part of this build
            raise
        module.register(sub)
    return parser


DEVICE_HELP = "cpu, cuda or cuda:N (default: the first GPU if any, else the CPU)"


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device``, defaulting the same way in every command (resolved by
    ``spf_bench.generation.base_model.parse_device``, None meaning the first GPU if any)."""
    parser.add_argument("--device", default=None, help=DEVICE_HELP)


def quiet_libraries() -> None:
    """Keep the libraries' loading chatter out of the suite's own progress output.

    diffusers and transformers print a progress bar per component loaded and advice meant
    for their own users; hpsv2's bundled open_clip imports a deprecated timm path. The
    suite shows its own progress bars for the work that takes time.
    """
    import warnings

    warnings.filterwarnings("ignore", message="Importing from timm.models.layers is deprecated", category=FutureWarning)
    # The suite's own warnings (a small FID set, a resized image) are sentences for users:
    # print them as such, without the source line Python appends for developers.
    warnings.showwarning = lambda message, category, *_args, **_kw: print(f"warning: {message}", file=sys.stderr)
    try:
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.set_verbosity_error()
        diffusers_logging.disable_progress_bar()
    except ImportError:
        pass
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
    except ImportError:
        pass


def run_cli(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    args = parser.parse_args(argv)
    quiet_libraries()
    try:
        # --no-progress hides every bar of the command, the trainings it starts included.
        with progress_shown(not getattr(args, "no_progress", False)):
            return int(args.func(args) or 0)
    except SpfError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; finished work is kept and the next run resumes from it.", file=sys.stderr)
        return 130
