"""On-disk cache of backbone features of original portraits.

Keyed by the image's sha256 and the backbone's identity (network, weights hash,
preprocessing, implementation version), so a second method scored on the same triples never
re-encodes an original, and a change of weights or preprocessing never reuses stale features.
Layout: ``cache_dir()/features/<backbone>/<identity key[:16]>/<sha[:2]>/<sha>.npz`` with an
``identity.json`` beside the entries for people reading the folder.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from spf_bench.core.atomic import atomic_path, write_text_atomic
from spf_bench.core import paths


class FeatureCache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else paths.cache_dir() / "features"
        self.hits = 0
        self.misses = 0

    def _folder(self, backbone) -> Path:
        return self.root / backbone.name / backbone.key()[:16]

    def _path(self, backbone, sha256: str) -> Path:
        return self._folder(backbone) / sha256[:2] / f"{sha256}.npz"

    def get(self, backbone, sha256: str) -> dict[str, np.ndarray] | None:
        path = self._path(backbone, sha256)
        try:
            with np.load(path, allow_pickle=False) as data:
                feature = {key: data[key] for key in data.files}
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            # A cache entry cut short by a killed run is a miss, recomputed and rewritten.
            self.misses += 1
            return None
        self.hits += 1
        return feature

    def has(self, backbone, sha256: str) -> bool:
        """Whether an entry exists (unread: a cut-short one is found a miss when read)."""
        return self._path(backbone, sha256).is_file()

    def put(self, backbone, sha256: str, feature: dict[str, np.ndarray]) -> None:
        path = self._path(backbone, sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        identity = self._folder(backbone) / "identity.json"
        if not identity.exists():
            write_text_atomic(identity, json.dumps(backbone.identity(), indent=1, sort_keys=True))
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **{k: np.asarray(v) for k, v in feature.items()})
