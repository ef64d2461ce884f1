"""The layers of docs/architecture.md hold: a backward import or an import circle fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    # The contracts live in pyproject.toml ([tool.importlinter]); lint-imports reads them there.
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_import_circles():
    """No module reaches itself through imports, counting those inside functions.

    A circle hides a missing layer: two modules that need each other are one idea split in
    two, or share a third that belongs below both.
    """
    graph = grimp.build_graph("spf_bench", "spf_train", cache_dir=None)
    circles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if _is_package_init_pair(module, imported):
                continue
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain:
                circles.append(" -> ".join((module,) + tuple(chain)))
    assert not circles, "import circles:\n" + "\n".join(circles)


def _is_package_init_pair(a: str, b: str) -> bool:
    # A package's __init__ re-exporting its own submodule is not a circle between ideas.
    return a.startswith(b + ".") or b.startswith(a + ".")
