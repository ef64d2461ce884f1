"""Option values the lab's commands share: an attribute of the world and a list of metrics."""

from __future__ import annotations

from spf_bench.core.errors import SpfError


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
