"""The suite's own rule on skips: a test may skip only for what CI cannot provide (a GPU), for
a system program setup installs only when it runs as root (Chromium, a LaTeX engine), or for
an operating system other than CI's Linux (glibc's heap, /proc), never for a file that ships
with the package, and CI prints every skip with its reason."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
# What a skip may name: hardware, a system program outside the Python environment, or the
# operating system (CI runs on Linux with glibc, so such a skip never fires there).
ALLOWED = re.compile(r"CUDA|GPU|LaTeX|chromium|linux|glibc", re.IGNORECASE)
SKIP = re.compile(r"pytest\.(?:skip|mark\.skipif|mark\.skip|importorskip)\b")


def test_every_skip_names_a_reason_ci_cannot_fix():
    offenders = []
    for path in sorted(TESTS.rglob("test_*.py")):
        if path == Path(__file__).resolve():
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if SKIP.search(line):
                context = " ".join(lines[number - 1:number + 2])
                if not ALLOWED.search(context):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "skips for something CI can fix:\n" + "\n".join(offenders)


def test_ci_prints_the_skip_list():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    flags = "".join(re.findall(r"-r(\w+)", options))
    assert "s" in flags or "a" in flags or "A" in flags  # -rs, -ra or -rA: skipped tests with their reasons


def test_shipped_synth_weights_are_required_not_skipped():
    from spf_bench.zoo import synth_source

    manifest = synth_source.manifest()
    assert manifest.get("networks"), f"no synthetic-world weights in {synth_source.shipped_dir()}"
