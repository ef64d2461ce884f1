"""Score a folder of customized portraits against a triple set: per-pair values and aggregates.

Three steps kept apart: :func:`~spf_bench.evaluation.pairs.load_pairs` checks the two sets
match; :func:`~spf_bench.evaluation.scoring.score_pairs` runs each needed backbone once per
batch (originals' features from the on-disk cache) and feeds every chosen metric;
:func:`~spf_bench.evaluation.summary.summarise` turns per-pair values into means,
paired-bootstrap 95% intervals, a per-category breakdown, the face-found rate and a record per
score. :func:`evaluate_run` does the three and writes ``per_pair.csv`` and ``summary.json`` in
the layout of ``docs/formats.md``. Which metrics exist, and what each needs, comes from
:mod:`spf_bench.metrics.registry`; metrics of one weight source alone (the synthetic world's,
under ``synth``) join through the same machinery and have no column elsewhere.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from spf_bench.core.atomic import write_text_atomic
from spf_bench.evaluation.features_cache import FeatureCache
from spf_bench.evaluation.options import EvalOptions
from spf_bench.evaluation.pairs import Pair, customized_folder, load_pairs, read_manifest
from spf_bench.evaluation.records import EVALUATOR_VERSION, LIBRARIES, library_versions, metric_record, record_fingerprint
from spf_bench.evaluation.scoring import Scores, backbones_for, make_backbones, score_pairs, zoo_networks_for
from spf_bench.evaluation.summary import per_pair_columns, summarise
from spf_bench.metrics import world

__all__ = [
    "EVALUATOR_VERSION", "LIBRARIES", "EvalOptions", "EvaluationResult", "Pair", "Scores", "backbones_for",
    "customized_folder", "default_out_dir", "evaluate_run", "library_versions", "load_pairs", "make_backbones",
    "metric_record", "per_pair_columns", "read_manifest", "record_fingerprint", "score_pairs", "summarise",
    "write_outputs", "zoo_networks_for",
]


def __getattr__(name: str):
    if name == "PER_PAIR_COLUMNS":  # computed on use, so a plug-in registered later counts
        return per_pair_columns()
    raise AttributeError(name)


@dataclass
class EvaluationResult:
    per_pair_rows: list[dict]
    summary: dict
    scores: Scores
    out_dir: Path | None


def write_outputs(out_dir: Path, rows: Iterable[dict], summary: dict) -> None:
    rows = list(rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=per_pair_columns(rows[0] if rows else ()), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(Path(out_dir) / "per_pair.csv", buffer.getvalue())
    write_text_atomic(Path(out_dir) / "summary.json", json.dumps(summary, indent=1, ensure_ascii=False) + "\n")


def default_out_dir(images_dir: Path) -> Path:
    """A method run folder (``OUT/<method>`` or its ``images``) keeps its scores beside its images."""
    images_dir = Path(images_dir)
    return images_dir.parent if images_dir.name == "images" else images_dir


def evaluate_run(triples_dir: Path, images_dir: Path, weights: str = "tiny", out_dir: Path | None = None, *,
                 method: str | None = None, checkpoint_sha256: str | None = None, options: EvalOptions | None = None,
                 networks: dict[str, Any] | None = None, cache: FeatureCache | None = None,
                 progress: bool = True, write: bool = True, **option_overrides) -> EvaluationResult:
    """Score ``images_dir`` (a folder of ``<id>.png`` or a method run folder) against a triple set.

    ``options`` (or keyword overrides of :class:`EvalOptions`) choose metrics, device, batch
    size, bootstrap and the metric choices; ``networks`` passes networks already loaded from
    the zoo with the same weight source, by zoo name (e.g. the ``spf-bench run`` command's
    CLIP), since records name the source's weights; a network this call had to load itself
    (under ``synth``, the world's ``oracle``) is added to it for the next call. Returns the rows and summary and, unless
    ``write=False``, writes them to ``out_dir`` (default: the method run folder).
    """
    base = options or EvalOptions()
    options = EvalOptions(**{**base.__dict__, "weights": weights, **option_overrides}).resolved()
    triples_dir, images_dir = Path(triples_dir), Path(images_dir)
    _, _, triples_sha = read_manifest(triples_dir)
    pairs = load_pairs(triples_dir, images_dir)
    world.check_target_captions(pairs, options.metrics)
    folder = customized_folder(images_dir)
    backbones = make_backbones(options, networks)
    scores = score_pairs(pairs, options, backbones, cache, progress)
    if networks is not None:
        # A network first loaded here (the world's oracle, or one the caller did not preload)
        # goes back into the caller's shared dict, so the next method's scoring reuses it.
        for name, backbone in backbones.items():
            if name not in networks and backbone.loaded is not None:
                networks[name] = backbone.loaded
    identity = {
        "method": method or (folder.parent.name if folder.name == "images" else folder.name),
        "checkpoint_sha256": checkpoint_sha256,
        "triples_sha256": triples_sha,
        "weights": options.weights,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "images": str(folder),
        "n_pairs": len(pairs),
        "metrics": list(options.metrics),
    }
    rows, summary = summarise(scores, options, identity)
    target = Path(out_dir) if out_dir is not None else default_out_dir(folder)
    if write:
        write_outputs(target, rows, summary)
    return EvaluationResult(rows, summary, scores, target if write else None)
