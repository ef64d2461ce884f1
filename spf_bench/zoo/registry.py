"""The zoo's registry: every network the suite uses, and the sources its weights come from.

A network is described once by a :class:`Network`: the files its real weights consist of
(the *layout*, relative to the network's folder), one loader that reads a folder in that
layout, a builder that writes seeded *tiny* weights in the same layout, and a builder of the
real architecture with seeded random weights. The same loader therefore serves both the
user's real weights and the tiny ones, so the tiny zoo exercises the real loading code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from spf_bench.core.atomic import atomic_folder
from spf_bench.core.errors import SpfError, WeightsMissingError
from spf_bench.core import paths
from spf_bench.core.fingerprint import sha256_file  # re-exported: the zoo hashes its files with it

SOURCES = ("pretrained", "random", "tiny", "synth")

# Bumped whenever a tiny builder changes, so stale caches are rebuilt rather than reused.
TINY_FORMAT_VERSION = 1
_COMPLETE_MARKER = ".spf-complete.json"
LOCK_FILE = "spf-weights.lock.json"


@dataclass(frozen=True)
class WeightFile:
    """One file of a network's real weights.

    ``path`` is relative to the network's folder under ``SPF_WEIGHTS_DIR``; ``origin`` says
    where a user gets it (a hub repository and file, or a URL) and is what ``--fetch`` uses.
    """

    path: str
    origin: str
    url: str | None = None  # direct download address, when the file is not on a hub
    hub_repo: str | None = None  # hub repository id, when the file is on a model hub
    hub_path: str | None = None  # the file's path inside that repository


def hub_file(path: str, repo: str, hub_path: str | None = None) -> WeightFile:
    """A weight file that lives on the model hub as ``repo``/``hub_path`` (default: ``path``)."""
    return WeightFile(path, f"hub {repo}, file {hub_path or path}", hub_repo=repo, hub_path=hub_path or path)


def url_file(path: str, url: str) -> WeightFile:
    """A weight file downloaded from a plain URL."""
    return WeightFile(path, url, url=url)


@dataclass(frozen=True)
class Network:
    name: str
    summary: str
    files: tuple[WeightFile, ...]
    load_folder: Callable[..., Any]  # (folder, device, dtype) -> network object
    write_tiny: Callable[[Path], None]  # writes seeded tiny weights in the real layout
    build_random: Callable[..., Any]  # (device, dtype) -> real architecture, seeded init
    extra_layout: tuple[str, ...] = field(default=())  # files the loader reads beyond `files`


_NETWORKS: dict[str, Network] = {}


def register(network: Network) -> Network:
    _NETWORKS[network.name] = network
    return network


def known_networks() -> dict[str, Network]:
    _import_all()
    return dict(_NETWORKS)


def get_network(name: str) -> Network:
    _import_all()
    if name not in _NETWORKS:
        raise SpfError(f"Unknown network '{name}'; known networks are: {', '.join(sorted(_NETWORKS))}.")
    return _NETWORKS[name]


def check_source(source: str) -> str:
    if source not in SOURCES:
        raise SpfError(f"Unknown weight source '{source}'; choose one of: {', '.join(SOURCES)}.")
    return source


def _import_all() -> None:
    # Importing the network modules registers them; kept lazy so `import spf_bench.zoo`
    # stays cheap and a broken optional backend only fails when that network is used.
    import importlib

    importlib.import_module(f"{__package__}.networks")


# ----------------------------------------------------------------------------- folders

def pretrained_folder(name: str) -> Path:
    root = paths.weights_dir()
    if root is None:
        raise WeightsMissingError(
            f"SPF_WEIGHTS_DIR is not set, so the pretrained weights of '{name}' cannot be found; "
            "set it to the folder laid out as the README's 'Real weights' section describes.")
    return root / name


def missing_files(network: Network, folder: Path) -> list[WeightFile]:
    return [f for f in network.files if not (folder / f.path).is_file()]


def describe_missing(network: Network, folder: Path, missing: list[WeightFile]) -> str:
    parts = [f"{folder / f.path} (get it from {f.url or f.origin})" for f in missing]
    return f"Network '{network.name}' is missing " + "; ".join(parts) + "."


def tiny_folder(name: str) -> Path:
    return paths.cache_dir() / f"tiny-v{TINY_FORMAT_VERSION}" / name


def build_folder_atomically(folder: Path, write: Callable[[Path], None],
                            finished: Callable[[Path], bool] | None = None) -> Path:
    """Run ``write`` into a temporary sibling of ``folder``, then rename it into place.

    A build that is killed half-way therefore never leaves a folder that looks complete; one
    that another process finished meanwhile (``finished`` says so) is kept as it is.
    """
    with atomic_folder(folder, finished) as partial:
        write(partial)
    return folder


def _tiny_complete(folder: Path) -> bool:
    return (folder / _COMPLETE_MARKER).is_file()


def ensure_tiny(network: Network) -> Path:
    """Build the tiny weights of ``network`` into the cache unless already complete."""
    folder = tiny_folder(network.name)
    if _tiny_complete(folder):
        return folder

    def write(tmp: Path) -> None:
        with torch.random.fork_rng(devices=[]):
            network.write_tiny(tmp)
        hashes = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        (tmp / _COMPLETE_MARKER).write_text(json.dumps({"format": TINY_FORMAT_VERSION, "sha256": hashes}, indent=1, sort_keys=True))

    return build_folder_atomically(folder, write, finished=_tiny_complete)


def folder_for(name: str, source: str) -> Path | None:
    """The folder a network's weights are read from, or None for the `random` source."""
    check_source(source)
    network = get_network(name)
    if source == "tiny":
        return ensure_tiny(network)
    if source == "pretrained":
        return pretrained_folder(name)
    if source == "synth":
        from spf_bench.zoo import synth_source

        # The world trains only some networks; the others come from the tiny zoo.
        return synth_source.folder(name) if synth_source.origin(name) == "synth" else ensure_tiny(network)
    return None


# ----------------------------------------------------------------------------- loading

def load(name: str, source: str = "tiny", device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> Any:
    """Load network ``name`` with weights from ``source`` (``pretrained``, ``random``, ``tiny``, ``synth``)."""
    check_source(source)
    network = get_network(name)
    device = torch.device(device)
    if source == "random":
        return network.build_random(device=device, dtype=dtype)
    folder = folder_for(name, source)
    if source == "pretrained":
        missing = missing_files(network, folder)
        if missing:
            raise WeightsMissingError(describe_missing(network, folder, missing))
        verify_lock(network, folder)
    if source == "synth":
        from spf_bench.zoo import synth_source

        if synth_source.origin(name) == "synth":
            synth_source.verify(name)
    return network.load_folder(folder, device=device, dtype=dtype)


def verify_lock(network: Network, folder: Path) -> None:
    """Check files against the hashes ``--fetch`` recorded, when a lock file exists."""
    root = paths.weights_dir()
    lock_path = root / LOCK_FILE if root else None
    if lock_path is None or not lock_path.is_file():
        return
    recorded = json.loads(lock_path.read_text()).get(network.name, {})
    for rel, expected in recorded.items():
        actual = sha256_file(folder / rel)
        if actual != expected:
            raise SpfError(f"{folder / rel} does not match the sha256 recorded in {lock_path} when it was fetched; re-fetch it or delete its entry from the lock file.")
