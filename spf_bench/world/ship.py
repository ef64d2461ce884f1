"""Copying a finished training's weights into the package, with their hashes.

What ships: ``weights/<network>/`` for each zoo network the world trains (sd15, clip,
face), ``weights/oracle/`` (the world's own judge, not a zoo network), and
``weights/manifest.json`` with every file's sha256, the recipe and the training figures.
The copy is staged beside the target and renamed, so an interrupted ship leaves the old
weights whole.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from spf_bench.core.errors import SpfError
from spf_bench.core.fingerprint import sha256_file
from spf_bench.zoo.synth_source import MANIFEST, shipped_dir

ZOO_NETWORKS = ("sd15", "clip", "face")
ORACLE = "oracle"
SIZE_LIMIT_MB = 50.0


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def ship(work: Path, figures: dict, target: Path | None = None) -> Path:
    target = Path(target) if target else shipped_dir()
    source = Path(work) / "weights"
    missing = [n for n in (*ZOO_NETWORKS, ORACLE) if not (source / n).is_dir()]
    if missing:
        raise SpfError(f"{source} lacks the trained {', '.join(missing)}; finish 'spf-bench synth train' first.")
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".weights-", dir=target.parent))
    try:
        for name in (*ZOO_NETWORKS, ORACLE):
            shutil.copytree(source / name, stage / name)
        size_mb = sum(p.stat().st_size for p in stage.rglob("*") if p.is_file()) / 2**20
        if size_mb > SIZE_LIMIT_MB:
            raise SpfError(f"The world's weights take {size_mb:.1f} MB, over the {SIZE_LIMIT_MB:.0f} MB a package may ship; shrink the models in the recipe.")
        recipe = json.loads((Path(work) / "recipe.json").read_text())
        manifest = {
            "networks": {n: _hashes(stage / n) for n in ZOO_NETWORKS},
            "oracle": _hashes(stage / ORACLE),
            "size_mb": round(size_mb, 2),
            "recipe": recipe,
            "figures": figures,
        }
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        old = target.with_name(target.name + ".old")
        if target.exists():
            os.replace(target, old)
        os.replace(stage, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    return target


def verify_shipped(name: str) -> None:
    """Check the shipped files of ``name`` (a zoo network or the oracle) against the manifest."""
    from spf_bench.zoo import synth_source

    if name != ORACLE:
        synth_source.verify(name)
        return
    folder = shipped_dir() / ORACLE
    recorded = synth_source.manifest().get(ORACLE)
    if not recorded:
        raise SpfError(f"No shipped oracle is recorded in {shipped_dir() / MANIFEST}; run 'spf-bench synth train --ship'.")
    for rel, expected in recorded.items():
        if not (folder / rel).is_file() or sha256_file(folder / rel) != expected:
            raise SpfError(f"{folder / rel} is missing or does not match the sha256 in {shipped_dir() / MANIFEST}.")


def load_shipped_oracle():
    """The shipped attribute oracle, after checking its files' hashes."""
    from spf_bench.world import oracle

    verify_shipped(ORACLE)
    return oracle.load(shipped_dir() / ORACLE)
