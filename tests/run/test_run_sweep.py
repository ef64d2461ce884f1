"""A run killed mid-write leaves temporaries named after its process; the next run sweeps
those of dead processes from the run folder and the cache, and keeps a live writer's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from spf_bench.benchmark import RunRequest, run_benchmark
from spf_bench.core import paths
from spf_bench.generation.sampling import GenerationSettings

pytestmark = pytest.mark.usefixtures("single_thread")


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_rerun_after_kills_leaves_no_temporaries_of_dead_processes(tmp_path):
    out = tmp_path / "runs"
    request = RunRequest(methods=["base"], out=out, weights="tiny", n_triples=2, evaluate=False, batch_size=2,
                         settings=GenerationSettings("ddim", 2, 7.5, 64, 64), progress=False, report=lambda *_: None)
    run_benchmark(request)
    images = out / "base" / "images"
    generations = next(p for p in (paths.cache_dir() / "generations").iterdir() if p.is_dir())
    dead, other_dead = _dead_pid(), _dead_pid()
    # what two killed runs leave: image temporaries (today's and the older pid-only form),
    # a half-written cache image and an unfinished checkpoint folder
    stale = [images / f".t00000.png.{dead}-0123abcd.tmp", images / f".t00001.png.{other_dead}.tmp",
             out / "base" / f".run.json.{dead}-89abcdef.tmp", generations / f".t00000-x.png.{dead}-00000000.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    partial = paths.cache_dir() / "trained" / f".ours-0000.{other_dead}-feedbeef.tmp"
    (partial / "unet").mkdir(parents=True)
    live = images / f".t00002.png.{os.getppid()}-0badf00d.tmp"  # a writer still running
    live.write_bytes(b"being written")

    messages = []
    request.report = messages.append
    run_benchmark(request)

    assert not any(p.exists() for p in stale) and not partial.exists()
    assert live.exists()
    # five of ours (the shared test cache may hold more from other killed sessions)
    [count] = [int(m.split()[1]) for m in messages if m.startswith("removed ") and "unfinished temporaries" in m]
    assert count >= 5
    leftovers = [p for p in out.rglob(".*.tmp") if p != live]
    assert leftovers == []
    live.unlink()
