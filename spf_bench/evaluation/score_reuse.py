"""Reuse of a method's finished scores when ``spf-bench run`` is started again.

Scoring is the slowest part of a run after training, and a run killed while scoring its
third method should not score the first two again. A method's ``summary.json`` records a key
of everything its numbers depend on: the run record (model fingerprint, checkpoint, triple
set, generation settings, dtype), the evaluation options and the source of the scoring code.
The images need no hash of their own: they are links into the generation cache, whose
folders are keyed by the same fingerprint and settings. A later run with the same key reads
the summary back instead of scoring; any difference scores again.
"""

from __future__ import annotations

import json
from pathlib import Path

from spf_bench.core.fingerprint import hash_json, hash_path

# Record fields that describe how a run went rather than what it made.
_VOLATILE = ("generation_seconds", "device", "checkpoint", "triples_dir")


def scoring_key(record: dict, eval_options: dict, reconstruction: bool) -> str:
    return hash_json({
        "record": {k: v for k, v in record.items() if k not in _VOLATILE},
        "eval_options": eval_options, "reconstruction": reconstruction, "code": _scoring_code_hash(),
    })


def finished_summary(folder: Path, key: str) -> dict | None:
    """The summary written earlier into ``folder`` under ``key``, or None (absent, unreadable, other key)."""
    summary_path = Path(folder) / "summary.json"
    if not (Path(folder) / "per_pair.csv").is_file():
        return None
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if summary.get("identity", {}).get("scoring_key") == key else None


def _scoring_code_hash() -> str:
    # A changed metric or evaluator scores again, as a changed model or setting would.
    root = Path(__file__).parents[1]
    files = [*sorted((root / "evaluation").glob("*.py")), *sorted((root / "metrics").glob("*.py"))]
    return hash_json({p.relative_to(root).as_posix(): hash_path(p) for p in files})
