"""The shape every training sub-command shares: config file + flags -> resolved config -> run."""

from __future__ import annotations

import os
from typing import Callable

from spf_train.config import add_config_arguments, resolve_config

NO_PROGRESS_HELP = "Hide the progress bar (spf_config.json does not record it). Default: off."


def add_progress_argument(parser) -> None:
    parser.add_argument("--no-progress", action="store_true", help=NO_PROGRESS_HELP)


def register_training_command(subparsers, name: str, help_text: str, config_cls, run: Callable) -> None:
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    add_config_arguments(parser, config_cls)
    add_progress_argument(parser)

    def func(args) -> int:
        config = resolve_config(config_cls, args)
        out = run(config)
        if int(os.environ.get("RANK", "0")) == 0:  # under a multi-process launch, said once
            print(f"{name}: wrote {out}")
        return 0

    parser.set_defaults(func=func)
