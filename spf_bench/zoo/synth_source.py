"""The ``synth`` weight source: the synthetic portrait world's trained networks, shipped
with the package.

``spf_bench/world/weights/`` holds one folder per network the world trains, in that
network's real layout, and ``manifest.json`` with the sha256 of every shipped file (plus
the recipe and figures of the training that made them). Loading checks the hashes first,
so a damaged or hand-edited file is named rather than silently used. Networks the world
does not train (Inception, LPIPS, SAM, HPS, MPS) come from the tiny zoo under this source,
and :func:`origin` says which source each network really comes from.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from spf_bench.core.errors import SpfError, WeightsMissingError

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "world" / "weights"
MANIFEST = "manifest.json"


def shipped_dir() -> Path:
    return SHIPPED_DIR


@lru_cache(maxsize=4)
def _manifest(root: Path) -> dict:
    path = root / MANIFEST
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise SpfError(f"{path} is not valid JSON; reinstall the package or rebuild it with 'spf-bench synth train --ship'.") from None


def manifest() -> dict:
    return _manifest(shipped_dir())


def world_networks() -> tuple[str, ...]:
    """Networks the world trains and ships (the others come from the tiny zoo)."""
    return tuple(sorted(manifest().get("networks", {})))


def origin(name: str) -> str:
    """'synth' for a network the world ships, 'tiny' for one borrowed from the tiny zoo."""
    return "synth" if name in world_networks() else "tiny"


def folder(name: str) -> Path:
    return shipped_dir() / name


def verify(name: str) -> None:
    """Check every shipped file of ``name`` against the manifest's sha256."""
    from spf_bench.core.fingerprint import sha256_file

    files = manifest().get("networks", {}).get(name)
    if files is None:
        raise WeightsMissingError(f"The synthetic world ships no weights for '{name}' (see {shipped_dir() / MANIFEST}).")
    root = folder(name)
    for rel, expected in files.items():
        path = root / rel
        if not path.is_file():
            raise WeightsMissingError(f"{path} is missing from the shipped synthetic-world weights; reinstall the package.")
        if sha256_file(path) != expected:
            raise SpfError(f"{path} does not match the sha256 in {shipped_dir() / MANIFEST}; reinstall the package or rebuild it with 'spf-bench synth train --ship'.")
