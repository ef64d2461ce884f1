"""Checkpoints a user names for methods: ``--checkpoint NAME=PATH`` and methods files."""

from __future__ import annotations

from pathlib import Path

from spf_bench.core.errors import SpfError
from spf_bench.methods.registry import canonical_method, get_method


def parse_checkpoint_args(pairs: list[str]) -> dict[str, Path]:
    """``NAME=PATH`` strings (from ``--checkpoint``) as a mapping, names checked."""
    out = {}
    for pair in pairs or []:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise SpfError(f"'{pair}' is not of the form NAME=PATH (e.g. --checkpoint ours=out/stage2).")
        name = canonical_method(name.strip())
        get_method(name)
        out[name] = Path(path.strip()).expanduser()
    return out


def read_methods_file(path: Path) -> dict[str, Path]:
    """A methods file: YAML, JSON or TOML mapping method names to checkpoint paths.

    Either ``{ours: path, lora: path}`` or ``{checkpoints: {ours: path}}``; relative paths are
    taken from the file's folder, so a results bundle can carry its file and checkpoints.
    """
    path = Path(path)
    if not path.is_file():
        raise SpfError(f"The methods file {path} does not exist.")
    data = _read_mapping(path)
    data = data.get("checkpoints", data) if isinstance(data, dict) else data
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise SpfError(f"The methods file {path} must map method names to checkpoint paths.")
    out = {}
    for name, value in data.items():
        name = canonical_method(name)
        get_method(name)
        target = Path(value).expanduser()
        out[name] = target if target.is_absolute() else path.parent / target
    return out


def _read_mapping(path: Path):
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            import json

            return json.loads(text)
        if path.suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
        import yaml

        return yaml.safe_load(text)
    except Exception as exc:  # each parser has its own error type; all mean "not readable"
        raise SpfError(f"The methods file {path} cannot be parsed ({type(exc).__name__}).") from None
