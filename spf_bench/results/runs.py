"""Read what ``spf-bench run`` left in a results folder, and the triple set it used.

Layout (see ``docs/formats.md``): ``RUNS_DIR/<method>/summary.json``, ``per_pair.csv``,
``images/<id>.png`` and optionally ``reconstruction/<id>.png``. A sub-folder without a
``summary.json`` is not a method run (it may be a report or a cache) and is skipped. Anything
malformed stops with one sentence naming the file, because a silently skipped method would
make a table quietly lie by omission.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from spf_bench.core.errors import SpfError
from spf_bench.triples.triple_set import MANIFEST, TripleSet, read_manifest

PER_PAIR_REQUIRED = ("id", "category")


@dataclass
class MethodRun:
    """One method's results: identity, evaluator summary and the per-pair frame."""

    method: str
    folder: Path
    identity: dict
    summary: dict
    per_pair: pd.DataFrame | None = None

    @property
    def weights(self) -> str:
        return str(self.identity.get("weights", ""))

    def image_path(self, triple_id: str, kind: str = "images") -> Path | None:
        path = self.folder / kind / f"{triple_id}.png"
        return path if path.is_file() else None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SpfError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}).") from exc
    if not isinstance(data, dict):
        raise SpfError(f"{path} should hold a JSON object, not a {type(data).__name__}.")
    return data


def read_per_pair(path: Path) -> pd.DataFrame:
    """Read a per-pair frame; ids stay strings so '007' and '7' are never merged."""
    try:
        frame = pd.read_csv(path, dtype={"id": str, "category": str, "reason": str}, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SpfError(f"{path} cannot be read as CSV ({exc}).") from exc
    for column in PER_PAIR_REQUIRED:
        if column not in frame.columns:
            raise SpfError(f"{path} lacks the column '{column}'.")
    return frame


def load_run(folder: Path) -> MethodRun:
    summary = _read_json(folder / "summary.json")
    identity = summary.get("identity") or {}
    method = str(identity.get("method") or folder.name)
    per_pair_path = folder / "per_pair.csv"
    per_pair = read_per_pair(per_pair_path) if per_pair_path.is_file() else None
    return MethodRun(method=method, folder=folder, identity=identity, summary=summary, per_pair=per_pair)


def load_runs(runs_dir: Path | str) -> dict[str, MethodRun]:
    """Every method run under ``runs_dir``, keyed by method name, in folder-name order."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise SpfError(f"The results folder {root} does not exist.")
    runs: dict[str, MethodRun] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if not (folder / "summary.json").is_file():
            continue
        run = load_run(folder)
        if run.method in runs:
            raise SpfError(
                f"Two folders in {root} hold the method '{run.method}': "
                f"{runs[run.method].folder.name} and {folder.name}."
            )
        runs[run.method] = run
    return runs


def load_triple_set(folder: Path | str) -> TripleSet:
    """The triple set a report or the results browser shows, read by the suite's one reader.
    The pictures only show its originals beside the runs' images (the runs were scored
    against verified originals), so the images are not hashed again here."""
    return read_manifest(folder, settings_required=False)


def find_triple_set(runs: dict[str, MethodRun], runs_dir: Path) -> TripleSet | None:
    """The triple set named by a run's identity, or one kept inside the results folder.

    Used when the user gave no ``--triples``: grids need the originals, but the tables do not,
    so an absent set only drops the pictures that need it.
    """
    candidates = [Path(str(r.identity[key])) for r in runs.values() for key in ("triples_dir", "triples") if r.identity.get(key)]
    candidates += [runs_dir / "triples", runs_dir.parent / "triples"]
    for candidate in candidates:
        if (candidate / MANIFEST).is_file():
            return load_triple_set(candidate)
    return None


PAPER_TABLES = Path(__file__).resolve().parents[2] / "reports" / "paper_tables.csv"
PAPER_COLUMNS = ("table", "row", "method", "paper_label")


def load_paper_reference(path: Path | str | None = None) -> pd.DataFrame:
    """The paper's reported Tab. 1, 4 and 5, one row per (table, row); see ``reports/README.md``."""
    source = Path(path) if path else PAPER_TABLES
    if not source.is_file():
        raise SpfError(f"The paper's reference numbers are missing: {source} does not exist.")
    frame = pd.read_csv(source, dtype={"table": str, "method": str, "paper_label": str})
    for column in PAPER_COLUMNS:
        if column not in frame.columns:
            raise SpfError(f"{source} lacks the column '{column}'.")
    return frame
