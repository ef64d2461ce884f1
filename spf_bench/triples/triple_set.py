"""Test triple sets: original portraits of base captions, with a manifest that pins the protocol.

``DIR/manifest.json`` records every triple (captions, seed, image sha256) and, for the set,
the base model's identity and hash, sampler, steps, guidance, size, dtype and seed policy;
``DIR/originals/<id>.png`` holds the originals. The layout is the one docs/formats.md gives.

A build is resumable: the manifest is rewritten (atomically) every few seconds and at the
end, never after each batch (that rewrite grows with the set, so it made a build quadratic);
an image finished since the last write is adopted on resume from its file, which was itself
written atomically. A finished image is never rendered again, and batches are fixed slices of the triple list so a resumed
build computes the same batches as an uninterrupted one. Loading a set re-hashes its images
and refuses one whose files no longer match, naming the triples.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from spf_bench.core.atomic import write_bytes_atomic
from spf_bench.generation.base_model import BASE_NETWORK, base_sha256, dtype_name, load_base
from spf_bench.triples.captions import Triple, check_token_lengths
from spf_bench.core.errors import SpfError
from spf_bench.core.fingerprint import hash_json
from spf_bench.generation.sampling import (
    GenerationSettings,
    Job,
    encode_joined,
    png_bytes,
    render,
)
from spf_bench.core.fingerprint import sha256_file

MANIFEST = "manifest.json"
MANIFEST_EVERY_S = 10.0  # a killed build re-hashes at most this long's worth of finished images
ORIGINALS = "originals"
FORMAT_VERSION = 1
# Settings that must agree between a set on disk and a build asked to extend it.
_PINNED = ("base_model", "base_model_sha256", "weights", "sampler", "steps", "guidance", "height", "width", "dtype")


@dataclass
class TripleSet:
    root: Path
    info: dict
    triples: list[Triple]
    hashes: dict[str, str | None] = field(default_factory=dict)

    @property
    def settings(self) -> GenerationSettings:
        i = self.info
        return GenerationSettings(i["sampler"], int(i["steps"]), float(i["guidance"]), int(i["height"]), int(i["width"]))

    def original(self, triple_id: str) -> Path:
        return self.root / ORIGINALS / f"{triple_id}.png"

    def original_if_present(self, triple_id: str) -> Path | None:
        path = self.original(triple_id)
        return path if path.is_file() else None

    def by_id(self) -> dict[str, Triple]:
        return {t.id: t for t in self.triples}

    def entries(self) -> list[dict]:
        """Each triple as the manifest lists it, with its original's sha256."""
        return [self._entry(t) for t in self.triples]

    def manifest_sha256(self) -> str:
        """The hash of ``manifest.json`` as written: the evaluator's identity of the set."""
        return sha256_file(self.root / MANIFEST)

    @property
    def complete(self) -> bool:
        return all(self.hashes.get(t.id) for t in self.triples)

    @property
    def sha256(self) -> str:
        """Identity of the set: its pinned settings and every triple with its image hash."""
        pinned = {k: self.info.get(k) for k in _PINNED}
        return hash_json({"set": pinned, "triples": [self._entry(t) for t in self.triples]})

    def _entry(self, t: Triple) -> dict:
        return {**t.to_dict(), "sha256": self.hashes.get(t.id)}

    def to_json(self) -> dict:
        return {"set": self.info, "triples": [self._entry(t) for t in self.triples]}

    def save(self) -> None:
        write_bytes_atomic(self.root / MANIFEST, (json.dumps(self.to_json(), indent=1) + "\n").encode("utf-8"))


# ----------------------------------------------------------------------------- reading

def read_manifest(root: Path, settings_required: bool = True) -> TripleSet:
    """The one reader of ``manifest.json`` (``docs/formats.md``): every command reads a set here.

    ``settings_required=False`` accepts a set without the generation settings (a set made by
    another tool, only scored, never extended or generated from).
    """
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise SpfError(f"{root} is not a triple set: it has no {MANIFEST} (make one with 'spf-bench triples build --out {root}').")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        info, rows = data["set"], data["triples"]
        triples = [Triple(r["id"], r["category"], r["base_caption"], r["target_caption"], int(r["seed"])) for r in rows]
        hashes = {r["id"]: r.get("sha256") for r in rows}
        missing = [k for k in _PINNED if k not in info] if settings_required else []
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise SpfError(f"{path} is not a valid triple-set manifest ({type(exc).__name__}: {exc}).") from None
    if not isinstance(info, dict) or not isinstance(rows, list):
        raise SpfError(f"{path} is not a valid triple-set manifest (a 'set' object and a 'triples' list).")
    ids = [t.id for t in triples]
    if len(set(ids)) != len(ids) or any(not isinstance(i, str) or not i for i in ids):
        raise SpfError(f"{path} has missing or repeated triple ids.")
    if missing:
        raise SpfError(f"{path} lacks the set field(s) {', '.join(missing)}.")
    return TripleSet(root, info, triples, hashes)


def load_triple_set(root: Path, verify: bool = True, settings_required: bool = True) -> TripleSet:
    """A finished triple set, its images checked against the manifest's hashes (``verify``)."""
    ts = read_manifest(root, settings_required)
    unfinished = [t.id for t in ts.triples if not ts.hashes.get(t.id)]
    if unfinished:
        raise SpfError(f"The triple set {ts.root} is unfinished ({len(unfinished)} of {len(ts.triples)} originals missing); "
                       "rerun 'spf-bench triples build' with the same arguments to finish it.")
    if verify:
        verify_images(ts)
    return ts


def verify_images(ts: TripleSet, ids: list[str] | None = None) -> None:
    """Refuse a set whose recorded images are missing or changed, naming the triples."""
    bad = []
    for t in ts.triples:
        expected = ts.hashes.get(t.id)
        if not expected or (ids is not None and t.id not in ids):
            continue
        path = ts.original(t.id)
        if not path.is_file() or sha256_file(path) != expected:
            bad.append(t.id)
    if bad:
        shown = ", ".join(bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise SpfError(f"The original image(s) of triple(s) {shown} in {ts.root} are missing or no longer match "
                       "the manifest's sha256; restore them or rebuild the set.")


# ----------------------------------------------------------------------------- building

def set_info(weights: str, base_hash: str, settings: GenerationSettings, dtype: torch.dtype, seed_policy: str) -> dict:
    return {
        "format": FORMAT_VERSION, "base_model": BASE_NETWORK, "base_model_sha256": base_hash, "weights": weights,
        **settings.to_dict(), "dtype": dtype_name(dtype), "seed_policy": seed_policy,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


class _BaseModel:
    """The base model as the generator sees it (its own text conditioning)."""

    def __init__(self, pipe, fingerprint: str):
        self.pipe, self.fingerprint = pipe, fingerprint

    def encode_captions(self, pairs):
        return encode_joined(self.pipe, pairs)


def build_triple_set(out: Path, triples: list[Triple], weights: str = "tiny", settings: GenerationSettings | None = None,
                     seed_policy: str = "per-triple seed recorded in the manifest", batch_size: int = 8,
                     device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, progress: bool = True,
                     on_batch: Callable[[TripleSet], None] | None = None, pipe=None) -> TripleSet:
    """Build (or resume building) the triple set in ``out``. ``on_batch`` runs after each saved batch."""
    from spf_bench.core.progress import progress_bar

    settings = settings or GenerationSettings()
    out = Path(out)
    info = set_info(weights, base_sha256(weights), settings, dtype, seed_policy)
    ts = _resume_or_start(out, triples, info)
    _adopt_finished_files(ts)
    todo = [t for t in ts.triples if not ts.hashes.get(t.id)]
    if not todo:
        return ts  # finished: the model is not even loaded
    # The model is loaded only when there is work, and only unfinished triples are checked:
    # finished ones passed the same check when they were rendered.
    pipe = pipe if pipe is not None else load_base(weights, device=device, dtype=dtype)
    check_token_lengths(todo, pipe.tokenizer)
    ts.save()
    saved = time.monotonic()
    model = _BaseModel(pipe, info["base_model_sha256"])
    todo_total = len(todo)
    with progress_bar(total=len(ts.triples), initial=len(ts.triples) - todo_total, desc="originals", unit="img",
                      enabled=progress) as bar:
        # Fixed slices of the whole list, rendering only their unfinished members: an
        # interrupted build resumes with the very batches an uninterrupted one would run.
        for start in range(0, len(ts.triples), batch_size):
            chunk = [t for t in ts.triples[start:start + batch_size] if not ts.hashes.get(t.id)]
            if not chunk:
                continue
            jobs = [Job(t.id, t.base_caption, t.seed) for t in chunk]
            for batch, images in render(model, jobs, settings, batch_size=batch_size):
                for job, image in zip(batch, images):
                    data = png_bytes(image)
                    write_bytes_atomic(ts.original(job.id), data)
                    ts.hashes[job.id] = sha256_file(ts.original(job.id))
            if time.monotonic() - saved >= MANIFEST_EVERY_S:
                ts.save()
                saved = time.monotonic()
            bar.update(len(chunk))
            if on_batch is not None:
                on_batch(ts)
    ts.save()
    return ts


def _resume_or_start(out: Path, triples: list[Triple], info: dict) -> TripleSet:
    if not (out / MANIFEST).is_file():
        if out.exists() and any(out.iterdir()):
            raise SpfError(f"{out} is not empty and holds no {MANIFEST}; give an empty or new folder to --out.")
        return TripleSet(out, info, list(triples), {})
    ts = read_manifest(out)
    for key in _PINNED:
        if ts.info.get(key) != info[key]:
            raise SpfError(f"{out} holds a set built with {key} = {ts.info.get(key)!r}, not {info[key]!r}; "
                           "use another --out folder or the same settings.")
    old = {t.id: t for t in ts.triples}
    changed = [t.id for t in triples if t.id in old and old[t.id] != t]
    if changed:
        raise SpfError(f"{out} already holds triple(s) {', '.join(changed[:5])} with other captions or seeds; "
                       "use another --out folder.")
    if len(triples) < len(ts.triples):
        raise SpfError(f"{out} already holds {len(ts.triples)} triples, more than the {len(triples)} asked for; "
                       "ask for at least as many or use another --out folder.")
    verify_images(ts)  # never build on top of originals that were changed since
    ts.triples = list(triples)  # an extension keeps every recorded triple first, in order
    return ts


def _adopt_finished_files(ts: TripleSet) -> None:
    # An image saved just before a kill, whose hash the manifest missed: its file was
    # written atomically, so it is complete and need not be rendered again.
    for t in ts.triples:
        if not ts.hashes.get(t.id) and ts.original(t.id).is_file():
            ts.hashes[t.id] = sha256_file(ts.original(t.id))
