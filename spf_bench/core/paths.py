"""Where weights live: the user's real weights and the cache of built (tiny) ones."""

from __future__ import annotations

import os
from pathlib import Path

from spf_bench.core.errors import SpfError


def cache_dir() -> Path:
    """Folder for everything the suite builds itself (tiny zoo, feature caches).

    ``SPF_CACHE`` moves it; the default follows the XDG convention of the user's cache dir.
    """
    env = os.environ.get("SPF_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spf-bench"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpfError(f"The cache folder {base} cannot be created ({exc.strerror}); set SPF_CACHE to a writable folder.") from None
    if not os.access(base, os.W_OK | os.R_OK | os.X_OK):
        raise SpfError(f"The cache folder {base} is not readable and writable; set SPF_CACHE to a writable folder.")
    return base


def weights_dir() -> Path | None:
    """Folder holding the real (pretrained) weights, laid out as the README describes."""
    env = os.environ.get("SPF_WEIGHTS_DIR")
    return Path(env) if env else None
