"""Sharded scoring: the processes of a launch split the backbone passes through the feature cache.

Under ``accelerate launch`` with N processes, every process calls :func:`fill_share` with the
same scoring jobs: it encodes its share of the images into the shared on-disk feature cache
(features of originals and customized images, and the HPSv2 / MPS scores of customized
images with their captions), then all of them meet at a barrier. The main process then scores
every job exactly as a single process does (:func:`~spf_bench.evaluation.backbone_major.score_jobs`
or :func:`~spf_bench.evaluation.evaluator.evaluate_run`), now finding every cached feature on
disk, and alone writes ``per_pair.csv``, ``summary.json`` and the leaderboard.

(choice) The cache rather than a gather of features over the process group: it already is
the hand-over between a killed run and its rerun, keyed by image and network identity and
written atomically; SAM's masks and LPIPS's activations would be large to gather; and the
generation cache is shared between processes the same way, so this asks for no new kind of
storage (several nodes need one shared folder for both).

Exactness. A network's output can move in its last float bits with the composition of its
batch (measured on the tiny CLIP and AlexNet: up to 4.8e-7 between batches of 8, 3 and 1), so
a share must not be "every N-th image". The work is cut into exactly the forward passes a
single process makes, the same images in the same batches in the same order (with what the
cache already held at the start left out, as that process would), and process r takes passes
r, r + N, ... The features are then bit-identical to a single process's, given the same
number of threads per process (on the CPU a different thread count moves convolutions' sums).

Not sharded: LPIPS (not cached: its activations outweigh the image; the main process computes
it while scoring, AlexNet being the cheapest network of the set), CLIP's text embeddings (one
short text pass per pair), set-level values and the bootstrap (from cached features on the
main process, with the run's seed), and everything of a job scored without the cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spf_bench.core.errors import SpfError
from spf_bench.core.processes import stop_together
from spf_bench.core.progress import progress_bar
from spf_bench.evaluation.backbone_major import ScoringJob, _backbone_of, _release as release
from spf_bench.evaluation.features_cache import FeatureCache
from spf_bench.evaluation.memory_budget import plan_batches
from spf_bench.evaluation.scoring import _read_batch
from spf_bench.metrics import registry
from spf_bench.metrics.backbones import Backbone, ScoreBackbone, make_backbone, score_key
from spf_bench.metrics.base import FeatureBatch

ORIGINALS, CUSTOMIZED = "originals", "customized"


@dataclass(frozen=True)
class Pass:
    """One forward pass of one network as a single process makes it while scoring."""

    backbone: str
    job: int  # index into the jobs
    first: int  # first pair of the scoring batch
    size: int  # pairs in a scoring batch of this job and network
    side: str  # ORIGINALS or CUSTOMIZED
    positions: tuple[int, ...]  # the batch's images this pass computes (the others were cached)
    call: int = 0  # a score network: which of the metric's calls in the batch


class _CaptionRecorder:
    """Stands in for a score network while a metric's ``feed`` runs, to learn which (image,
    caption) pairs it asks for, without loading anything."""

    def __init__(self) -> None:
        self.captions: list[list[str]] = []

    def score(self, images, captions) -> np.ndarray:
        self.captions.append(list(captions))
        return np.zeros(len(images), dtype=np.float32)


def _score_captions(name: str, job: ScoringJob, batch, customized) -> list[list[str]]:
    """The captions each call of ``name``'s metrics makes for this batch, in call order."""
    recorder = _CaptionRecorder()
    fed = FeatureBatch(batch, {}, customized, {name: recorder}, job.options)
    for metric in job.options.metrics:
        cls = registry.metric(metric)
        if cls.per_pair and _backbone_of(metric) == name:
            cls.build(job.options, {name: recorder}).feed(fed)
    return recorder.captions


def _by_backbone(jobs: list[ScoringJob]) -> dict[str, list[int]]:
    """The jobs each network scores, in the order backbone-by-backbone scoring takes them."""
    by_backbone: dict[str, list[int]] = {}
    for index, job in enumerate(jobs):
        for metric in job.options.metrics:
            indices = by_backbone.setdefault(_backbone_of(metric), [])
            if index not in indices:
                indices.append(index)
    return by_backbone


def _make(name: str, jobs: list[ScoringJob], by_backbone: dict[str, list[int]], device) -> Backbone:
    # the first job's options set the network's (SAM's grid), as in backbone-by-backbone scoring
    job = jobs[by_backbone[name][0]]
    extra = {"points_per_side": job.options.sam_points()} if name == "sam" else {}
    return make_backbone(name, job.options.weights, device, **extra)


def _shared(backbone: Backbone, options) -> bool:
    """Whether a single process would read and write this network's values in the cache."""
    if not options.use_cache:
        return False
    if isinstance(backbone, ScoreBackbone):
        return options.cache_customized
    return backbone.cacheable and backbone.encodes_images


@dataclass
class _JobKeys:
    """A job's cache keys per pair: its original, its customized image, and per score network
    and call the (customized image, caption) score."""

    originals: list[str]
    customized: list[str]
    scores: dict[str, list[list[str]]]


def _job_keys(job: ScoringJob, score_networks: list[str]) -> _JobKeys:
    # each image is read once here, whatever the number of networks
    keys = _JobKeys([], [], {name: [] for name in score_networks})
    for first in range(0, len(job.pairs), job.options.batch_size):
        pairs = job.pairs[first:first + job.options.batch_size]
        _, customized, keys_o, keys_c, _ = _read_batch(pairs)
        keys.originals += keys_o
        keys.customized += keys_c
        for name in score_networks:
            for call, captions in enumerate(_score_captions(name, job, pairs, customized)):
                if call == len(keys.scores[name]):
                    keys.scores[name].append([])
                keys.scores[name][call] += [score_key(image, caption) for image, caption in zip(customized, captions)]
    return keys


def plan_passes(jobs: list[ScoringJob], cache: FeatureCache, max_memory_gb: float | None = None) -> list[Pass]:
    """Every cache-filling forward pass a single process would make scoring ``jobs``, in its order.

    The order is that of backbone-by-backbone scoring (networks sorted by name, then jobs,
    then batches); within one network it is also the pair-by-pair evaluator's. A key counts
    as cached when the cache held it before planning or an earlier pass computes it.
    """
    by_backbone = _by_backbone(jobs)
    if not by_backbone:
        return []
    batch = max(job.options.batch_size for job in jobs)
    plans = plan_batches(sorted(by_backbone), jobs[0].options.weights, batch, max_memory_gb)
    backbones = {name: _make(name, jobs, by_backbone, "cpu") for name in sorted(by_backbone)}  # nothing is loaded
    shared = {name: [i for i in indices if _shared(backbones[name], jobs[i].options)]
              for name, indices in by_backbone.items()}
    keys: dict[int, _JobKeys] = {}
    for index in sorted({i for indices in shared.values() for i in indices}):
        score_networks = [name for name, indices in shared.items()
                          if index in indices and isinstance(backbones[name], ScoreBackbone)]
        keys[index] = _job_keys(jobs[index], score_networks)
    passes: list[Pass] = []
    for name in sorted(by_backbone):
        backbone, known = backbones[name], set()

        def computed(batch_keys: list[str]) -> tuple[int, ...]:
            todo = tuple(i for i, key in enumerate(batch_keys) if key not in known and not cache.has(backbone, key))
            known.update(batch_keys)
            return todo

        for index in shared[name]:
            job, job_keys = jobs[index], keys[index]
            size = min(job.options.batch_size, plans[name].batch_size)
            for first in range(0, len(job.pairs), size):
                cut = slice(first, first + size)
                if isinstance(backbone, ScoreBackbone):
                    sides = [(CUSTOMIZED, call_keys[cut], call) for call, call_keys in enumerate(job_keys.scores[name])]
                else:
                    sides = [(ORIGINALS, job_keys.originals[cut], 0)]
                    if job.options.cache_customized:  # else a single process encodes them while scoring
                        sides.append((CUSTOMIZED, job_keys.customized[cut], 0))
                for side, batch_keys, call in sides:
                    todo = computed(batch_keys)
                    if todo:
                        passes.append(Pass(name, index, first, size, side, todo, call))
    return passes


def _run_pass(backbone: Backbone, job: ScoringJob, one: Pass, cache: FeatureCache) -> int:
    pairs = job.pairs[one.first:one.first + one.size]
    pairs = [pairs[i] for i in one.positions]  # only the images this pass computes are read
    originals, customized, keys_o, keys_c, _ = _read_batch(pairs)
    if isinstance(backbone, ScoreBackbone):
        captions = _score_captions(one.backbone, job, pairs, customized)[one.call]
        backbone.score_cache = cache
        # score() finds none of these in the cache (no other pass computes them) and scores
        # the very images a single process scores together
        backbone.score(customized, captions)
        return len(pairs)
    images, keys = (originals, keys_o) if one.side == ORIGINALS else (customized, keys_c)
    for key, feature in zip(keys, backbone.encode(images)):
        cache.put(backbone, key, feature)
    return len(pairs)


def fill_share(jobs: list[ScoringJob], state, *, device="cpu", cache_root=None, max_memory_gb: float | None = None,
               progress: bool = True) -> dict[str, int]:
    """This process's share of the cache-filling passes of ``jobs``; every process of the
    launch calls it with the same jobs. Returns the images this process computed, by network.

    Two barriers: nobody writes to the cache before every process has planned from the same
    cache contents, and nobody scores before every share is written.
    """
    rank, world = (state.process_index, state.num_processes) if state is not None else (0, 1)
    cache = FeatureCache(cache_root) if cache_root is not None else FeatureCache()
    passes, error = [], None
    try:
        passes = plan_passes(jobs, cache, max_memory_gb)
    except SpfError as exc:  # e.g. an image one node cannot read: every process stops, none hangs
        error = exc
    stop_together(state, error)  # (a meeting of all: nobody writes before everybody has planned)
    mine = passes[rank::world]
    counts: dict[str, int] = {}
    backbones: dict[str, Backbone] = {}
    by_backbone = _by_backbone(jobs)
    for one in progress_bar(mine, desc=f"scoring share {rank + 1}/{world}", unit="pass", enabled=progress):
        if one.backbone not in backbones:
            _release(backbones)  # one network resident at a time, as in backbone-by-backbone scoring
            backbones[one.backbone] = _make(one.backbone, jobs, by_backbone, device)
        done = _run_pass(backbones[one.backbone], jobs[one.job], one, cache)
        counts[one.backbone] = counts.get(one.backbone, 0) + done
    _release(backbones)
    if state is not None:
        state.wait_for_everyone()
    return counts


def _release(backbones: dict[str, Backbone]) -> None:
    for backbone in backbones.values():
        release(backbone)
    backbones.clear()


def share_report(counts: dict[str, int], state) -> str:
    """One line saying what this process computed, for the log of a launch."""
    rank, world = (state.process_index, state.num_processes) if state is not None else (0, 1)
    detail = ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "nothing"
    return f"scoring share of process {rank} of {world}: {sum(counts.values())} images computed ({detail})"
