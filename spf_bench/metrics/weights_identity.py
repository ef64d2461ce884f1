"""A short, stable hash identifying the weights a backbone was loaded with.

- tiny (and any folder the zoo built): the hashes the zoo recorded when it built the folder
  (its completion marker), so nothing is re-read;
- pretrained / synth: sha256 of the network's weight files, memoised on disk by (path, size,
  mtime) because hashing a multi-GB checkpoint on every evaluation would cost seconds;
- random: seeded initialisation, identified by network and torch version (the seeded values
  depend on torch's generator and init code, not on a file).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from spf_bench.core.atomic import write_json_atomic
from spf_bench.core.errors import WeightsMissingError


def _digest(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _memo_path() -> Path:
    from spf_bench.core import paths

    return paths.cache_dir() / "features" / "weights-sha256.json"


def _file_sha256(path: Path) -> str:
    from spf_bench.core.fingerprint import sha256_file

    stat = path.stat()
    memo_file = _memo_path()
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    if key not in memo:
        memo[key] = sha256_file(path)
        write_json_atomic(memo_file, memo)
    return memo[key]


def weights_sha256(name: str, source: str) -> str:
    from spf_bench.zoo import registry

    if source == "random":
        return _digest({"network": name, "source": "random", "torch": torch.__version__})
    folder = registry.folder_for(name, source)
    marker = folder / registry._COMPLETE_MARKER
    if marker.is_file():  # a folder the zoo built itself records its files' hashes
        return _digest(json.loads(marker.read_text()))
    network = registry.get_network(name)
    if source == "pretrained":
        missing = registry.missing_files(network, folder)
        if missing:
            raise WeightsMissingError(registry.describe_missing(network, folder, missing))
    layout = [f.path for f in network.files] + list(network.extra_layout)
    present = [rel for rel in layout if (folder / rel).is_file()]
    if not present:  # another source's own layout: every file of its folder
        present = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return _digest({rel: _file_sha256(folder / rel) for rel in present})
