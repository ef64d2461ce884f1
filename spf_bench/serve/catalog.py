"""What the web app may show: the runs as ``report_runs`` reads them, and a registry of image files.

The registry maps an opaque key to each image file the runs and their triple set hold (every
method's customized images and reconstructions, and the originals). The image route serves a
file only by its key, so no path from a request ever reaches the file system.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from spf_bench.core.errors import SpfError
from spf_bench.results.runs import MethodRun, find_triple_set, load_runs
from spf_bench.triples.triple_set import TripleSet
from spf_bench.results.tables import METRIC_BY_NAME, PER_PAIR_METRICS, method_sort_key

IMAGE_KINDS = ("images", "reconstruction")


def image_key(kind: str, method: str, triple_id: str) -> str:
    return hashlib.sha256(f"{kind}\0{method}\0{triple_id}".encode()).hexdigest()[:24]


@dataclass
class Catalog:
    runs_dir: Path
    runs: dict[str, MethodRun]
    triples: TripleSet | None
    methods: list[str]
    metrics: list[str]  # per-pair metrics some run has, in the tables' order
    rows: pd.DataFrame  # one row per triple: id, category, base_caption, target_caption
    values: dict[str, pd.DataFrame]  # method -> per-pair frame indexed by id
    images: dict[str, Path] = field(default_factory=dict)

    def image(self, kind: str, method: str, triple_id: str) -> str | None:
        """The key of an image, or None when the run has no such file."""
        key = image_key(kind, method, triple_id)
        return key if key in self.images else None

    def value(self, method: str, metric: str, triple_id: str) -> float:
        frame = self.values.get(method)
        if frame is None or metric not in frame.columns or triple_id not in frame.index:
            return math.nan
        return float(frame.at[triple_id, metric])

    def triple(self, triple_id: str) -> dict | None:
        match = self.rows[self.rows["id"] == triple_id]
        return None if match.empty else match.iloc[0].to_dict()


def load_catalog(runs_dir: Path | str) -> Catalog:
    root = Path(runs_dir)
    runs = load_runs(root)
    if not runs:
        raise SpfError(f"{root} holds no method run (no sub-folder with a summary.json); run 'spf-bench run --out {root}' first.")
    triples = find_triple_set(runs, root)
    methods = sorted(runs, key=method_sort_key)
    values = {m: r.per_pair.drop_duplicates("id").set_index("id") for m, r in runs.items() if r.per_pair is not None}
    metrics = [m.name for m in PER_PAIR_METRICS if any(m.name in f.columns for f in values.values())]
    known = triples.by_id() if triples else {}
    ids: dict[str, str] = {}
    for frame in values.values():
        for tid, category in frame["category"].items():
            ids.setdefault(str(tid), str(category))
    rows = pd.DataFrame([{"id": tid, "category": category,
                          "base_caption": known[tid].base_caption if tid in known else "",
                          "target_caption": known[tid].target_caption if tid in known else ""}
                         for tid, category in ids.items()], columns=["id", "category", "base_caption", "target_caption"])
    images: dict[str, Path] = {}
    for tid in ids:
        for method, run in runs.items():
            for kind in IMAGE_KINDS:
                path = run.image_path(tid, kind)
                if path is not None:
                    images[image_key(kind, method, tid)] = path
        original = triples.original_if_present(tid) if triples is not None else None
        if original is not None:
            images[image_key("original", "", tid)] = original
    return Catalog(root, runs, triples, methods, metrics, rows, values, images)


def arrow(metric: str) -> str:
    return METRIC_BY_NAME[metric].arrow if metric in METRIC_BY_NAME else ""


def higher_is_better(metric: str) -> bool:
    return METRIC_BY_NAME[metric].higher_is_better if metric in METRIC_BY_NAME else True
