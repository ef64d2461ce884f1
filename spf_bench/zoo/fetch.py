"""Filling ``SPF_WEIGHTS_DIR`` from the model hub or the files' release URLs.

Every fetched file's sha256 goes into a lock file beside the weights; later loads verify
against it (``registry.verify_lock``), so a file swapped or damaged after fetching is caught.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from spf_bench.core.atomic import write_json_atomic
from spf_bench.core.errors import SpfError
from spf_bench.zoo.registry import LOCK_FILE, Network, WeightFile
from spf_bench.core.fingerprint import sha256_file

HUB_HOST = "huggingface.co"


def _reachable(host: str, timeout: float = 5.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _hosts_needed(files: list[WeightFile]) -> set[str]:
    hosts = set()
    for f in files:
        if f.url:
            hosts.add(urlparse(f.url).hostname or f.url)
        elif f.hub_repo:
            hosts.add(os.environ.get("HF_ENDPOINT", f"https://{HUB_HOST}").split("//")[-1].split("/")[0])
    return hosts


def fetch_network(network: Network, root: Path) -> dict[str, str]:
    """Download every missing file of ``network`` into ``root/<name>`` and return their hashes."""
    folder = root / network.name
    todo = [f for f in network.files if not (folder / f.path).is_file()]
    unreachable = sorted(h for h in _hosts_needed(todo) if not _reachable(h))
    if unreachable:
        raise SpfError(
            f"Fetching the weights of '{network.name}' needs {', '.join(unreachable)}, which this machine cannot reach; "
            f"copy the files listed by 'spf-bench weights --weights pretrained --check' into {folder} by hand.")
    for f in todo:
        if not (f.url or f.hub_repo):
            raise SpfError(f"{folder / f.path} has no automatic source; get it from {f.origin}.")
        _download(f, folder / f.path)
    return {f.path: sha256_file(folder / f.path) for f in network.files}


def _download(f: WeightFile, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as tmp:
        tmp_path = Path(tmp.name)
    try:
        if f.url:
            with urllib.request.urlopen(f.url) as response, open(tmp_path, "wb") as out:
                shutil.copyfileobj(response, out)
        else:
            from huggingface_hub import hf_hub_download

            cached = hf_hub_download(f.hub_repo, f.hub_path or f.path)
            shutil.copyfile(cached, tmp_path)
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_lock(root: Path, hashes: dict[str, dict[str, str]]) -> Path:
    lock = root / LOCK_FILE
    recorded = json.loads(lock.read_text()) if lock.is_file() else {}
    recorded.update(hashes)
    write_json_atomic(lock, recorded, durable=True, indent=2)
    return lock
