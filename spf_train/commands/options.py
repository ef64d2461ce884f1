"""The shape every training sub-command shares: config file + flags -> resolved config -> run."""

from __future__ import annotations

from typing import Callable

from spf_train.config import add_config_arguments, resolve_config


def register_training_command(subparsers, name: str, help_text: str, config_cls, run: Callable) -> None:
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    add_config_arguments(parser, config_cls)

    def func(args) -> int:
        config = resolve_config(config_cls, args)
        out = run(config)
        print(f"{name}: wrote {out}")
        return 0

    parser.set_defaults(func=func)
