"""A freed network's heap memory goes back to the system before the next network loads."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

PROBE = """
import gc, torch
from spf_bench.evaluation.backbone_major import return_freed_memory
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
base = rss()
blocks = [torch.ones(1 << 20, dtype=torch.uint8) for _ in range(256)]  # 256 MiB of mid-sized tensors
above = torch.ones(3 << 20, dtype=torch.uint8)  # alive above them: the heap's top cannot shrink
del blocks
gc.collect()
held = rss() - base
return_freed_memory()
print(held >> 20, (rss() - base) >> 20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="glibc's heap and /proc/self/statm")
def test_freed_tensors_leave_the_resident_set():
    # A fixed mmap threshold puts the 1 MiB blocks on the heap whatever ran before in the
    # process, as a network's tensors are once glibc has raised its threshold.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(8 << 20)}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True, timeout=300)
    held, after = (int(x) for x in out.stdout.split())
    assert held > 200  # freed, yet still resident: what sat under the next network's peak
    assert after < 50
