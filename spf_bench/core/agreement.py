"""Every process of a multi-process launch must be doing the same job.

``accelerate launch`` starts N copies of one command; if their arguments, files or weights
differ (a different ``--triples`` folder on one node, a stale checkpoint on another), each
would silently work on its own job and the gathered result would mix them. Before any work,
each process hashes what defines its job and the hashes are compared across the process
group; on a mismatch every process stops with the same sentence, so no process waits forever
for a partner that has already quit.
"""

from __future__ import annotations

import hashlib
import json

import torch

from .errors import SpfError


def fingerprint(value) -> str:
    """A short stable hash of a JSON-able value (options, paths, sha256s)."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def tensors_fingerprint(tensors) -> str:
    """A hash of the bytes of ``tensors`` (in order): equal weights give equal hashes."""
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(t.detach().to("cpu", copy=False).contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def _group_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _flatten(parts: dict) -> dict[str, str]:
    """{what: value}, a dict value spread into one entry per key ("options 'seed'"), so that
    the message names the very option that differs."""
    flat = {}
    for name, value in parts.items():
        if isinstance(value, dict):
            flat.update({f"{name} '{key}'": json.dumps(v, sort_keys=True, default=str) for key, v in value.items()})
        else:
            flat[name] = str(value)
    return flat


def check_agreement(parts: dict, job: str = "this launch") -> None:
    """Stop every process when their ``parts`` differ.

    ``parts`` maps what defines the job to a fingerprint, or to a dict of options compared key
    by key. A no-op in a single process. Every process gathers every process's parts, so the
    message (what differs, which processes hold which value) is the same on each.
    """
    size = _group_size()
    if size <= 1:
        return
    import torch.distributed as dist

    gathered: list = [None] * size
    dist.all_gather_object(gathered, _flatten(parts))
    names = list(dict.fromkeys(name for g in gathered for name in g))
    differing = [name for name in names if len({g.get(name) for g in gathered}) > 1]
    if differing:
        first = differing[0]
        groups: dict[str, list[int]] = {}
        for rank, g in enumerate(gathered):
            groups.setdefault(str(g.get(first)), []).append(rank)
        held = ", ".join(f"process{'es' if len(ranks) > 1 else ''} {'/'.join(map(str, ranks))} {value}"
                         for value, ranks in groups.items())
        raise SpfError(f"The {size} processes of {job} disagree on {', '.join(differing)} ({first}: {held}); "
                       f"start every process with the same arguments, files and weights.")
