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
# Tiny models run microsecond-sized ops: a second thread only adds coordination cost, and
# under any competing load it made these tests several times slower.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def spf_cache() -> Path:
    return Path(_cache)


@pytest.fixture(scope="module")
def single_thread():
    """Run a module's torch ops on one intra-op thread.

    The tiny networks' ops take microseconds, so a second OpenMP thread only adds
    synchronisation, and on a busy two-core machine its spin-waits make a training step
    5-20x slower. The previous setting is restored after the module.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_pipe():
    from spf_bench import zoo

    return zoo.load("sd15", source="tiny")


@pytest.fixture(scope="session")
def tiny_clip():
    """The tiny open_clip bundle; a test that trains or casts it takes a copy."""
    from spf_bench import zoo

    return zoo.load("clip", source="tiny")


class _LazyNetworks(dict):
    """Zoo networks on the tiny weights, each loaded on first use and then shared."""

    def get(self, name, default=None):
        if name not in self:
            from spf_bench import zoo

            self[name] = zoo.load(name, source="tiny")
        return self[name]


@pytest.fixture(scope="session")
def tiny_networks():
    """The metrics' tiny networks by zoo name, loaded once per session; pass as ``networks=``
    to :func:`spf_bench.evaluation.evaluator.evaluate_run` or ``RunRequest.networks``."""
    return _LazyNetworks()


@pytest.fixture(scope="session")
def shipped_synth_weights():
    """The synthetic world's weights ship inside the package, so a checkout without them is
    broken: the tests that need them fail saying so rather than skip."""
    from spf_bench.zoo import synth_source

    assert synth_source.manifest(), (f"the synthetic world's weights are missing from {synth_source.shipped_dir()}; "
                                     "they ship with the package (a broken checkout or install)")
