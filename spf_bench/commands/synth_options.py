"""What the lab's commands (``synth lab``, ``synth table``) share: their common options, and
the parsing of an attribute of the world and of a list of metrics."""

from __future__ import annotations

from spf_bench.core.errors import SpfError


def add_lab_options(parser, *, methods_default: str, methods_help: str, prompts_default: int, prompts_help: str) -> None:
    """The options every fine-tune-and-draw experiment takes; only the method list and the
    number of prompts differ between the lab and the table."""
    parser.add_argument("--target", default="glasses=yes", help="ATTRIBUTE=VALUE every fine-tuning image shows (default glasses=yes)")
    parser.add_argument("--spurious", default="background=green", help="ATTRIBUTE=VALUE correlated with it (default background=green)")
    parser.add_argument("--methods", default=methods_default, help=methods_help)
    parser.add_argument("--metrics", default="all", help="comma-separated suite metrics scored per method, or 'all' (default) or 'none'")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps of every fine-tune (default 300)")
    parser.add_argument("--train-images", type=int, default=64, help="images in the fine-tuning set (default 64)")
    parser.add_argument("--prompts", type=int, default=prompts_default, help=prompts_help)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def attribute_pair(text: str, flag: str) -> tuple[str, str]:
    from spf_bench.world.attributes import BY_NAME

    name, _, value = text.partition("=")
    if name not in BY_NAME or value not in BY_NAME[name].values:
        known = "; ".join(f"{a.name}: {', '.join(a.values)}" for a in BY_NAME.values())
        raise SpfError(f"{flag} '{text}' is not ATTRIBUTE=VALUE of the synthetic world ({known}).")
    return name, value


def metric_list(text: str, known: tuple[str, ...]) -> tuple[str, ...]:
    if text.strip() in ("all", "none"):
        return known if text.strip() == "all" else ()
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in names if m not in known]
    if unknown or not names:
        raise SpfError(f"--metrics '{text}' is not 'all', 'none' or a list of the suite's metrics ({', '.join(known)}).")
    return names
