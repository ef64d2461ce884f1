"""Content hashes that identify models, checkpoints and settings in manifests and cache keys.

Hashing what a model *is* (its tensors, or the bytes of its files) rather than where it
lives means a cache entry stays valid when a folder moves and goes stale the moment a
checkpoint is retrained in place.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch




def hash_json(value) -> str:
    """sha256 of a JSON-able value in canonical form (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_path(path: Path) -> str:
    """sha256 over a file, or over every file of a folder (relative names and contents)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue  # markers and editor files say nothing about the weights
        digest.update(rel.encode("utf-8") + b"\0" + sha256_file(file).encode("ascii") + b"\n")
    return digest.hexdigest()


def hash_modules(**modules: torch.nn.Module) -> str:
    """sha256 over the named modules' state dicts (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha256()
    for name in sorted(modules):
        for key, tensor in sorted(modules[name].state_dict().items()):
            data = tensor.detach().to("cpu").contiguous()
            digest.update(f"{name}.{key}:{data.dtype}:{tuple(data.shape)}\n".encode("utf-8"))
            # view as bytes: bf16 has no numpy dtype, and the raw bytes are what matters
            digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def pipeline_hash(pipe) -> str:
    """Identity of a Stable Diffusion pipeline's weights (UNet, VAE, text encoder)."""
    return hash_modules(unet=pipe.unet, vae=pipe.vae, text_encoder=pipe.text_encoder)


def hash_path_cached(path: Path) -> str:
    """:func:`hash_path`, remembered per (file names, sizes, mtimes) in the cache folder.

    Real Stable Diffusion folders hold gigabytes; re-reading them for every command would
    cost seconds each time, while a changed file always changes its size or mtime.
    """
    from spf_bench.core import paths

    path = Path(path).resolve()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    stamp = hash_json([[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files])
    memo = paths.cache_dir() / "hash-memo" / f"{stamp}.sha256"
    if memo.is_file():
        return memo.read_text().strip()
    value = hash_path(path)
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_name(f".{memo.name}.tmp")
    tmp.write_text(value)
    tmp.replace(memo)
    return value


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
