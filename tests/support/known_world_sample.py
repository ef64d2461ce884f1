"""A fixed sample of the known world (renders, masks, sets, captions) and its digests.

``tests/world/snapshots/known_world.json`` holds the digests this module computed before the
novel attributes were added; ``test_synth_novel.py`` recomputes them, so any change to a
pixel, a mask, the training set's sampling or a caption of the known world fails a test.
Regenerate the file only for a deliberate change of the known world:
``PYTHONPATH=.:tests python -m support.known_world_sample > tests/world/snapshots/known_world.json``.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

KNOWN = ("smiling", "beard", "shirt", "style", "hair_colour", "hair_length", "skin", "glasses", "hat", "background")


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _portraits(n: int, seed: int) -> list[tuple[dict, int, int]]:
    # Drawn here, not with the world's sampler, so the sample stays fixed whatever the sampler does.
    from spf_bench.world.attributes import BY_NAME

    rng = np.random.default_rng([0x5A4D, seed])
    out = []
    for _ in range(n):
        attrs = {name: BY_NAME[name].values[int(rng.integers(len(BY_NAME[name].values)))] for name in KNOWN}
        out.append((attrs, int(rng.integers(10_000)), int(rng.integers(2**31))))
    return out


def digests() -> dict:
    from spf_bench.world.dataset import render_set
    from spf_bench.world.masks import attribute_masks
    from spf_bench.world.measure import random_captions
    from spf_bench.world.render import render

    out: dict = {"renders": {}, "masks": {}}
    for size, n in ((32, 48), (64, 12)):
        for i, (attrs, identity, seed) in enumerate(_portraits(n, size)):
            key = f"{size}:{i}"
            out["renders"][key] = _digest(render(attrs, identity, seed, size))
            masks = attribute_masks(attrs, identity, size)
            out["masks"][key] = _digest(*(masks[name] for name in KNOWN))
    data = render_set(24, seed=1, size=32)
    out["render_set"] = _digest(data.images, data.labels[:, : len(KNOWN)], data.identities, data.seeds)
    out["captions"] = hashlib.sha256("\n".join(random_captions(64, 0)).encode()).hexdigest()
    return out


if __name__ == "__main__":
    print(json.dumps(digests(), indent=1, sort_keys=True))
