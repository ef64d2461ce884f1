"""Score several image folders backbone by backbone, with one metric network in memory at a time.

The evaluator's own loop (:func:`~spf_bench.evaluation.evaluator.score_pairs`) is
pair-major: every backbone a metric set needs is resident while batches go through them all.
For a run of several methods that means SAM, HPS, MPS, CLIP, Inception, AlexNet and ArcFace
together (17 GB at real size). Here the order is turned around:

* pass 1, for each backbone in turn: load that one network (once for the whole run), score
  every job's metrics that read it (the originals' features come from the on-disk cache
  after the first job), then drop it and return its memory before the next one is loaded;
* pass 2, with no network resident: join each job's per-backbone values and summarise
  (means, bootstrap intervals, FID from its kept float64 statistics).

A metric's per-pair values are computed while its backbone is resident rather than from the
disk cache in pass 2, because LPIPS's activations (10 MB per image), HPS and MPS scores of
(image, caption) and CLIP's text embeddings are not cached and would need the network again.
The values are those of the pair-major path: same features, same batches, same metric code.
"""

from __future__ import annotations

import ctypes
import gc
import sys
import time
import weakref
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from spf_bench.core.progress import progress_bar
from spf_bench.evaluation import evaluator
from spf_bench.evaluation.evaluator import EvalOptions, EvaluationResult, Pair, Scores
from spf_bench.evaluation.scoring import NOT_IN_ZOO
from spf_bench.evaluation.features_cache import FeatureCache
from spf_bench.evaluation.memory_budget import plan_batches
from spf_bench.evaluation.precision import scoring_dtype
from spf_bench.metrics import registry, world
from spf_bench.metrics.backbones import make_backbone


@dataclass
class ScoringJob:
    """One folder of customized images to score against a triple set, ready to run."""

    pairs: list[Pair]
    options: EvalOptions  # resolved: the metrics really scored
    identity: dict


def scoring_job(triples_dir: Path, images_dir: Path, weights: str, *, method: str | None = None,
                checkpoint_sha256: str | None = None, **option_overrides) -> ScoringJob:
    """The job :func:`~spf_bench.evaluation.evaluator.evaluate_run` would run, checked the same way."""
    options = EvalOptions(**{**EvalOptions().__dict__, "weights": weights, **option_overrides}).resolved()
    triples_dir, images_dir = Path(triples_dir), Path(images_dir)
    _, _, triples_sha = evaluator.read_manifest(triples_dir)
    pairs = evaluator.load_pairs(triples_dir, images_dir)
    world.check_target_captions(pairs, options.metrics)
    folder = evaluator.customized_folder(images_dir)
    identity = {
        "method": method or (folder.parent.name if folder.name == "images" else folder.name),
        "checkpoint_sha256": checkpoint_sha256, "triples_sha256": triples_sha, "weights": options.weights,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "images": str(folder),
        "n_pairs": len(pairs), "metrics": list(options.metrics),
    }
    return ScoringJob(pairs, options, identity)


@dataclass
class NetworkLedger:
    """Which metric networks were loaded, how often, and how many were alive at once.

    Liveness is followed by the garbage collector (``weakref.finalize``), so the count falls
    only when the memory really can be returned, not when a name is merely dropped.
    """

    loads: dict[str, int] = field(default_factory=dict)
    alive: int = 0
    peak_alive: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def load(self, name: str, source: str, device) -> Any:
        from spf_bench import zoo

        start = time.perf_counter()
        network = zoo.load(name, source=source, device=device)
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
        self.loads[name] = self.loads.get(name, 0) + 1
        self.alive += 1
        self.peak_alive = max(self.peak_alive, self.alive)
        weakref.finalize(network, self._freed)
        return network

    def _freed(self) -> None:
        self.alive -= 1


def _backbone_of(metric: str) -> str:
    # Every metric of the registry reads one backbone; one reading several would need them
    # resident together, which this order does not do: it is refused rather than half served.
    backbones = registry.metric(metric).backbones
    if len(backbones) != 1:
        from spf_bench.core.errors import SpfError

        raise SpfError(f"The metric '{metric}' reads {len(backbones)} backbones; backbone-by-backbone scoring "
                       f"needs one per metric, so score it with --scoring resident.")
    return backbones[0]


def _release(backbone) -> None:
    # Every reference the backbone holds to its network (SAM's predictor keeps one too).
    backbone._network = None
    if hasattr(backbone, "_predictor"):
        backbone._predictor = None
    gc.collect()
    return_freed_memory()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def return_freed_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc; a no-op elsewhere).

    glibc keeps freed blocks below its mmap threshold for reuse, and a network's many
    mid-sized tensors are such blocks: after HPS ViT-H was freed, 1.8 GiB of them stayed in the
    resident set, under the next network's peak (0.2 GiB after ``malloc_trim``). Neither torch
    nor Python offers the call, hence ctypes.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # another C library (musl): nothing to trim this way
        pass


def _merge(parts: list[Scores], pairs: list[Pair]) -> Scores:
    """One job's per-backbone :class:`Scores` as the pair-major loop would have returned them."""
    merged = Scores(pairs=pairs, per_pair={}, reasons=[""] * len(pairs))
    for part in parts:
        merged.per_pair.update(part.per_pair)
        if part.face_found is not None:
            merged.face_found, merged.reasons = part.face_found, part.reasons
        merged.set_values.update(part.set_values)
        merged.set_features.update(part.set_features)
        merged.resized_pairs = max(merged.resized_pairs, part.resized_pairs)
        merged.cache_hits += part.cache_hits
        merged.cache_misses += part.cache_misses
        merged.identities.update(part.identities)
        for key, seconds in part.seconds.items():
            merged.seconds[key] = merged.seconds.get(key, 0.0) + seconds
    return merged


def score_jobs(jobs: list[ScoringJob], *, device: str | torch.device = "cpu", networks: dict | None = None,
               cache_root: Path | None = None, max_memory_gb: float | None = None, progress: bool = True,
               ledger: NetworkLedger | None = None) -> list[EvaluationResult]:
    """Score every job backbone by backbone; results in the order of ``jobs`` (nothing written).

    ``networks`` may hold networks the caller keeps loaded (by zoo name); those are used and
    left alone. Every other network is loaded once, used for every job, and freed.
    """
    if not jobs:
        return []
    ledger = ledger if ledger is not None else NetworkLedger()
    weights = jobs[0].options.weights
    by_backbone: dict[str, list[int]] = {}
    for index, job in enumerate(jobs):
        for metric in job.options.metrics:
            by_backbone.setdefault(_backbone_of(metric), [])
            if index not in by_backbone[_backbone_of(metric)]:
                by_backbone[_backbone_of(metric)].append(index)
    batch = max(job.options.batch_size for job in jobs)
    # Before anything large is loaded: refuses a budget no network order can meet.
    plans = plan_batches(sorted(by_backbone), weights, batch, max_memory_gb)
    parts: list[list[Scores]] = [[] for _ in jobs]
    used_batch: dict[str, int] = {}
    for name in progress_bar(sorted(by_backbone), desc="backbones", unit="network", enabled=progress):
        # (the oracle is not a zoo network: only a caller's own copy is taken from ``networks``)
        wanted = networks is not None and (name not in NOT_IN_ZOO or name in networks)
        given = networks.get(name) if wanted else None
        job0 = jobs[by_backbone[name][0]]
        extra = {"points_per_side": job0.options.sam_points()} if name == "sam" else {}
        backbone = make_backbone(name, weights, device, given, **extra)
        if given is None and name not in NOT_IN_ZOO:
            # Loaded lazily as before (not at all when every feature is cached), but counted.
            backbone._load = lambda name=name: ledger.load(name, weights, device)
        for index in by_backbone[name]:
            job = jobs[index]
            metrics = tuple(m for m in job.options.metrics if _backbone_of(m) == name)
            size = min(job.options.batch_size, plans[name].batch_size)
            used_batch[name] = size
            options = replace(job.options, metrics=metrics, batch_size=size)
            cache = FeatureCache(cache_root) if options.use_cache else None
            parts[index].append(evaluator.score_pairs(job.pairs, options, {name: backbone}, cache, progress=False))
        if given is None:
            _release(backbone)
        del backbone
        gc.collect()
    results = []
    for job, job_parts in zip(jobs, parts):
        scores = _merge(job_parts, job.pairs)
        rows, summary = evaluator.summarise(scores, job.options, job.identity)
        _record_execution(summary, used_batch, job.options)
        results.append(EvaluationResult(rows, summary, scores, None))
    return results


def _record_execution(summary: dict, used_batch: dict[str, int], options: EvalOptions) -> None:
    # A budget that shrank a network's batch, or a precision other than fp32, is part of the
    # record: a different record (its fingerprint changes), never mixed silently with the other.
    device_type = torch.device(options.device).type
    for name, entry in summary["metrics"].items():
        backbone = _backbone_of(name)
        size = used_batch.get(backbone, options.batch_size)
        dtype = scoring_dtype(backbone, device_type)
        record = entry["record"]
        if record.get("batch_size") != size or record.get("dtype") != dtype:
            record["batch_size"], record["dtype"] = size, dtype
            record.pop("fingerprint", None)
            record["fingerprint"] = evaluator.record_fingerprint(record)


def peak_rss_bytes() -> int:
    """This process's peak resident memory (bytes) as the kernel counts it."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)

