"""``spf-train tokencompose``: the TokenCompose baseline (fine-tuning with token-level grounding losses).

    spf-train tokencompose --data DIR --out DIR [--steps N] [--config FILE] [--option VALUE ...]

``DIR`` is a portrait training set whose rows ground their phrases (``masks`` or ``points``,
see ``spf_train.tokencompose.data``). Every field of ``TokenComposeConfig`` is also a flag
(``--token-loss-weight``, ``--grounding-places``, ``--learning-rate`` ...); ``--data``,
``--out`` and ``--steps`` are short names for ``--data-dir``, ``--output-dir`` and ``--max-steps``.
"""

from __future__ import annotations

from spf_train.commands.options import add_progress_argument
from spf_train.config import add_config_arguments, resolve_config

HELP = "Baseline: TokenCompose, fine-tuning with token- and pixel-level grounding losses on cross-attention."


def _run(args) -> int:
    from spf_train.tokencompose.train import train_tokencompose
    from spf_train.tokencompose.config import TokenComposeConfig

    out = train_tokencompose(resolve_config(TokenComposeConfig, args))
    print(f"tokencompose: wrote {out}")
    return 0


def register(subparsers) -> None:
    from spf_train.tokencompose.config import TokenComposeConfig

    parser = subparsers.add_parser("tokencompose", help=HELP, description=HELP)
    add_config_arguments(parser, TokenComposeConfig)
    # Same destinations as the long flags, so either spelling lands in the resolved config.
    parser.add_argument("--data", dest="cfg__data_dir", default=None, metavar="DIR", help="Short for --data-dir.")
    parser.add_argument("--out", dest="cfg__output_dir", default=None, metavar="DIR", help="Short for --output-dir.")
    parser.add_argument("--steps", dest="cfg__max_steps", default=None, metavar="N", help="Short for --max-steps.")
    add_progress_argument(parser)
    parser.set_defaults(func=_run)
