"""Scoring: each needed backbone runs once per batch (originals' features from the on-disk
cache) and every chosen metric reads the features it declares (:meth:`MetricContract.feed`);
set-level metrics (FID, KID, FD-CLIP) get their kept features at the end."""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch

from spf_bench.core.errors import SpfError
from spf_bench.core.images import read_image
from spf_bench.evaluation.features_cache import FeatureCache
from spf_bench.evaluation.options import EvalOptions
from spf_bench.evaluation.pairs import Pair
from spf_bench.metrics import preprocess, registry
from spf_bench.metrics.backbones import ScoreBackbone, make_backbone
from spf_bench.metrics.base import FeatureBatch

NOT_IN_ZOO = ("oracle",)  # the world's attribute oracle ships with the package, outside the zoo


@dataclass
class Scores:
    """What :func:`score_pairs` measured, before aggregation."""

    pairs: list[Pair]
    per_pair: dict[str, np.ndarray]
    set_values: dict[str, float] = field(default_factory=dict)  # a set-level metric's value
    set_features: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # ... and its features
    reasons: list[str] = field(default_factory=list)
    face_found: np.ndarray | None = None
    resized_pairs: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0
    identities: dict[str, dict] = field(default_factory=dict)


def backbones_for(metrics: Iterable[str]) -> tuple[str, ...]:
    """Every backbone the metrics read, sorted."""
    return tuple(sorted({b for m in metrics for b in registry.metric(m).backbones}))


def zoo_networks_for(metrics: Iterable[str]) -> tuple[str, ...]:
    """The zoo networks ``metrics`` need, for a caller that loads them once to share them."""
    return tuple(b for b in backbones_for(metrics) if b not in NOT_IN_ZOO)


def make_backbones(options: EvalOptions, networks: dict[str, Any] | None = None) -> dict[str, Any]:
    """One backbone per network the chosen metrics need; ``networks`` injects loaded ones."""
    networks = networks if networks is not None else {}
    backbones = {}
    for name in backbones_for(options.metrics):
        extra = {"points_per_side": options.sam_points()} if name == "sam" else {}
        backbones[name] = make_backbone(name, options.weights, options.device, networks.get(name), **extra)
    return backbones


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def run(self, key: str, fn, *args):
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds[key] += time.perf_counter() - start


def _features(backbone, images, keys, cache, cache_ok, timer) -> list[dict]:
    out: list[dict | None] = [None] * len(images)
    use_cache = cache is not None and backbone.cacheable and cache_ok
    todo = []
    for i, key in enumerate(keys):
        if use_cache:
            out[i] = cache.get(backbone, key)
        if out[i] is None:
            todo.append(i)
    if todo:
        encoded = timer.run(f"forward:{backbone.name}", backbone.encode, [images[i] for i in todo])
        for i, feature in zip(todo, encoded):
            out[i] = feature
            if use_cache:
                cache.put(backbone, keys[i], feature)
    return out




def _read_batch(batch: list[Pair]):
    originals, customized, keys_o, keys_c, resized = [], [], [], [], 0
    for pair in batch:
        image_o, sha_o = read_image(pair.original, pair.id)
        image_c, sha_c = read_image(pair.customized, pair.id)
        image_c, was_resized = preprocess.match_size(image_o, image_c)
        resized += was_resized
        if was_resized:
            # The features are those of the resized pixels: the key says so.
            sha_c = hashlib.sha256(f"{sha_c}@{image_o.shape[1]}x{image_o.shape[0]}".encode()).hexdigest()
        originals.append(image_o)
        customized.append(image_c)
        keys_o.append(sha_o)
        keys_c.append(sha_c)
    return originals, customized, keys_o, keys_c, resized



def _face_reasons(feats_face) -> tuple[np.ndarray, list[str]]:
    found_o = np.array([bool(np.isfinite(f["embedding"]).all()) for f in feats_face[0]])
    found_c = np.array([bool(np.isfinite(f["embedding"]).all()) for f in feats_face[1]])
    reasons = []
    for o, c in zip(found_o, found_c):
        if o and c:
            reasons.append("")
        elif not o and not c:
            reasons.append("ID: no face found in either image")
        else:
            reasons.append(f"ID: no face found in the {'original' if not o else 'customized'} image")
    return found_o & found_c, reasons



def _update_metrics(metrics: dict[str, Any], batch: FeatureBatch) -> None:
    for metric in metrics.values():
        metric.feed(batch)


def _keep_set_features(kept: dict[str, tuple[list, list]], set_metrics, feats) -> None:
    for name, cls in set_metrics.items():
        for side in (0, 1):
            kept[name][side].append(np.stack([f[cls.feature] for f in feats[cls.backbones[0]][side]]))


def score_pairs(pairs: list[Pair], options: EvalOptions, backbones: dict[str, Any] | None = None,
                cache: FeatureCache | None = None, progress: bool = True) -> Scores:
    """Per-pair values of the chosen metrics; each image passes through each backbone once."""
    from spf_bench.core.progress import progress_bar

    options.check()
    if not pairs:
        raise SpfError("There are no pairs to score; an empty set cannot be evaluated.")
    backbones = backbones if backbones is not None else make_backbones(options)
    if cache is None and options.use_cache:
        cache = FeatureCache()
    timer = _Timer()
    for backbone in backbones.values():
        if not backbone.cacheable:
            backbone.network  # always needed: load before timing the loop  # noqa: B018
        if isinstance(backbone, ScoreBackbone):
            backbone.score_cache = cache if options.cache_customized else None
    classes = {name: registry.metric(name) for name in options.metrics}
    metrics = {name: cls.build(options, backbones) for name, cls in classes.items() if cls.per_pair}
    set_metrics = {name: cls for name, cls in classes.items() if not cls.per_pair}
    kept: dict[str, tuple[list, list]] = {name: ([], []) for name in set_metrics}
    found_all, reasons_all, resized_total = [], [], 0
    start = time.perf_counter()
    with torch.inference_mode():
        for first in progress_bar(range(0, len(pairs), options.batch_size), desc="scoring", unit="batch", enabled=progress):
            batch = pairs[first:first + options.batch_size]
            images_o, images_c, keys_o, keys_c, resized = timer.run("read", _read_batch, batch)
            resized_total += resized
            feats = {}
            for name, backbone in backbones.items():
                if backbone.encodes_images:  # the others score customized images with captions, in feed
                    feats[name] = (_features(backbone, images_o, keys_o, cache, True, timer),
                                   _features(backbone, images_c, keys_c, cache, options.cache_customized, timer))
            _update_metrics(metrics, FeatureBatch(batch, feats, images_c, backbones, options, timer.run))
            _keep_set_features(kept, set_metrics, feats)
            if "face" in feats:
                found, reasons = _face_reasons(feats["face"])
                found_all.append(found)
                reasons_all.extend(reasons)
    timer.seconds["total"] = time.perf_counter() - start
    for name, backbone in backbones.items():
        # A cacheable backbone loads lazily inside its first forward call (not at all when
        # everything is cached); report loading on its own line, apart from forward passes.
        if backbone.load_seconds:
            if backbone.cacheable and f"forward:{name}" in timer.seconds:
                timer.seconds[f"forward:{name}"] -= backbone.load_seconds
            timer.seconds[f"load:{name}"] = backbone.load_seconds
    per_pair = {name: metric.per_pair().numpy() for name, metric in metrics.items()}
    scores = Scores(pairs=pairs, per_pair=per_pair, reasons=reasons_all or [""] * len(pairs),
                    face_found=np.concatenate(found_all) if found_all else None, resized_pairs=resized_total,
                    seconds=dict(timer.seconds), identities={n: b.identity() for n, b in backbones.items()})
    if cache is not None:
        scores.cache_hits, scores.cache_misses = cache.hits, cache.misses
    for name, cls in set_metrics.items():
        features = (np.concatenate(kept[name][0]), np.concatenate(kept[name][1]))
        scores.set_features[name] = features
        scores.set_values[name] = float("nan")
        if len(pairs) >= cls.min_pairs:
            start = time.perf_counter()
            scores.set_values[name] = float(cls.set_value(*(torch.from_numpy(f) for f in features)))
            scores.seconds[name] = time.perf_counter() - start
    return scores
