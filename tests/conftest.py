"""Shared test set-up.

The tiny zoo is built into a cache folder shared by the whole test session (``SPF_CACHE``);
set ``SPF_TEST_CACHE`` to reuse one across sessions while developing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

_cache = os.environ.get("SPF_TEST_CACHE") or tempfile.mkdtemp(prefix="spf-test-cache-")
os.environ["SPF_CACHE"] = _cache
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(2)


@pytest.fixture(scope="session")
def spf_cache() -> Path:
    return Path(_cache)


@pytest.fixture(scope="session")
def tiny_pipe():
    from spf_bench import zoo

    return zoo.load("sd15", source="tiny")
