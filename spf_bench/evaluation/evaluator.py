"""Score a folder of customized portraits against a triple set: per-pair values and aggregates.

Three steps kept apart: :func:`load_pairs` checks the two sets match; :func:`score_pairs`
runs each needed backbone once per batch (originals' features from the on-disk cache) and
feeds all metrics; :func:`summarise` turns per-pair values into means, paired-bootstrap 95%
intervals, a per-category breakdown, the face-found rate and a record per score.
:func:`evaluate_run` does the three and writes ``per_pair.csv`` and ``summary.json`` in the
layout of ``docs/formats.md``. Under the ``synth`` weights it also scores the synthetic
world's exact metrics (:mod:`spf_bench.metrics.world`) through the same machinery; under any
other weights they are not scored and have no column.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import math
import platform
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from spf_bench.core.atomic import write_text_atomic
from spf_bench.triples.captions import full_caption
from spf_bench.core.errors import SpfError
from spf_bench.evaluation.features_cache import FeatureCache
from spf_bench.core.images import read_image
from spf_bench.metrics import (
    ALL_METRIC_ORDER,
    ALL_METRICS,
    METRIC_ORDER,
    METRICS,
    PER_PAIR_METRICS,
    WORLD_METRIC_ORDER,
    frechet_distance,
)
from spf_bench.metrics import bootstrap, preprocess, world
from spf_bench.metrics.backbones import SamBackbone, ScoreBackbone, make_backbone

PER_PAIR_COLUMNS = ("id", "category", *PER_PAIR_METRICS, "face_found", "reason")
LIBRARIES = ("torch", "torchvision", "torchmetrics", "torch-fidelity", "open_clip_torch", "lpips", "insightface",
             "onnxruntime", "segment-anything", "hpsv2", "numpy", "scipy", "pillow", "opencv-python-headless")
EVALUATOR_VERSION = "1"


@dataclass(frozen=True)
class EvalOptions:
    """Everything that changes a number; all of it goes into the records."""

    metrics: tuple[str, ...] = METRIC_ORDER
    weights: str = "tiny"
    device: str = "cpu"
    batch_size: int = 8
    n_bootstrap: int = 1000
    fid_bootstrap: int = 100  # FID is recomputed per resample: fewer resamples than the means
    seed: int = 0
    clip_t_caption: str = "target"  # (choice) "target": c_t; "full": c_b ⊕ c_t
    sam_points_per_side: int = 16
    use_cache: bool = True
    cache_customized: bool = True  # also cache customized images' features: reruns resume
    world_metrics: bool = True  # under synth, add the world's exact metrics to the chosen ones

    def resolved(self) -> EvalOptions:
        """These options with the metrics a run really scores (the world's join under synth)."""
        self.check()
        group_of = {name: cls.group for name, cls in METRICS.items()}
        return replace(self, metrics=world.scored_metrics(self.metrics, self.weights, group_of, self.world_metrics))

    def check(self) -> None:
        unknown = [m for m in self.metrics if m not in ALL_METRICS]
        if unknown:
            raise SpfError(f"Unknown metric(s) {', '.join(unknown)}; known metrics are: {', '.join(METRIC_ORDER)} "
                           f"and, under --weights synth, {', '.join(WORLD_METRIC_ORDER)}.")
        if self.clip_t_caption not in ("target", "full"):
            raise SpfError(f"CLIP-T caption must be 'target' or 'full', not '{self.clip_t_caption}'.")
        if self.batch_size < 1 or self.n_bootstrap < 1 or self.fid_bootstrap < 1:
            raise SpfError("Batch size and bootstrap resample counts must be at least 1.")


@dataclass
class Pair:
    id: str
    category: str
    base_caption: str
    target_caption: str
    original: Path
    customized: Path


@dataclass
class Scores:
    """What :func:`score_pairs` measured, before aggregation."""

    pairs: list[Pair]
    per_pair: dict[str, np.ndarray]
    fid_value: float | None = None
    fid_features: tuple[np.ndarray, np.ndarray] | None = None
    reasons: list[str] = field(default_factory=list)
    face_found: np.ndarray | None = None
    resized_pairs: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0
    identities: dict[str, dict] = field(default_factory=dict)


@dataclass
class EvaluationResult:
    per_pair_rows: list[dict]
    summary: dict
    scores: Scores
    out_dir: Path | None


# ----------------------------------------------------------------------------- inputs

def read_manifest(triples_dir: Path) -> tuple[dict, list[dict], str]:
    """The triple set's ``set`` entry, its triples and the sha256 of ``manifest.json``."""
    path = Path(triples_dir) / "manifest.json"
    try:
        data = path.read_bytes()
        manifest = json.loads(data)
        triples = manifest["triples"]
    except FileNotFoundError:
        raise SpfError(f"{path} does not exist; point --triples at a folder made by 'spf-bench triples build'.") from None
    except (ValueError, KeyError, TypeError):
        raise SpfError(f"{path} is not a triple-set manifest (JSON with a 'triples' list).") from None
    if not isinstance(triples, list) or not triples:
        raise SpfError(f"The triple set {path} has no triples; an empty set cannot be scored.")
    ids = [t.get("id") for t in triples]
    if len(set(ids)) != len(ids) or any(not isinstance(i, str) or not i for i in ids):
        raise SpfError(f"{path} has missing or repeated triple ids.")
    return manifest.get("set", {}), triples, hashlib.sha256(data).hexdigest()


def customized_folder(images: Path) -> Path:
    """A method run folder (``OUT/<method>``) means its ``images`` subfolder."""
    images = Path(images)
    if not images.is_dir():
        raise SpfError(f"The images folder {images} does not exist.")
    if (images / "images").is_dir() and not any(images.glob("*.png")):
        return images / "images"
    return images


def _ids_sentence(ids: list[str]) -> str:
    shown = ", ".join(ids[:10])
    return shown + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")


def load_pairs(triples_dir: Path, images_dir: Path) -> list[Pair]:
    """The (original, customized) pairs, refusing sets that do not match id for id."""
    _, triples, _ = read_manifest(triples_dir)
    originals = Path(triples_dir) / "originals"
    folder = customized_folder(images_dir)
    found = {p.stem: p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp") and p.is_file()}
    ids = [t["id"] for t in triples]
    missing_o = [i for i in ids if not (originals / f"{i}.png").is_file()]
    if missing_o:
        raise SpfError(f"The triple set {triples_dir} lacks the original(s) {_ids_sentence(missing_o)} in {originals}.")
    missing_c = [i for i in ids if i not in found]
    if missing_c:
        raise SpfError(f"{folder} lacks the customized image(s) of triple(s) {_ids_sentence(missing_c)}.")
    extra = sorted(set(found) - set(ids))
    if extra:
        raise SpfError(f"{folder} holds image(s) {_ids_sentence(extra)} whose ids are not in the triple set {triples_dir}.")
    return [Pair(t["id"], t.get("category", ""), t.get("base_caption", ""), t.get("target_caption", ""),
                 originals / f"{t['id']}.png", found[t["id"]]) for t in triples]


# ----------------------------------------------------------------------------- scoring

BACKBONE_OF = {"FID": "inception", "LPIPS": "lpips", "ID": "face", "CLIP-I": "clip", "CLIP-T": "clip",
               "Seg-Cons": "sam", "HPSv2": "hps", "MPS": "mps"}
NOT_IN_ZOO = ("oracle",)  # the world's attribute oracle ships with the package, outside the zoo


def backbone_of(metric: str) -> str:
    """The backbone (zoo network name, or ``oracle``) whose features ``metric`` reads."""
    return BACKBONE_OF.get(metric) or ALL_METRICS[metric].backbones[0]


def zoo_networks_for(metrics: Iterable[str]) -> tuple[str, ...]:
    """The zoo networks ``metrics`` need, for a caller that loads them once to share them."""
    return tuple(sorted({backbone_of(m) for m in metrics} - set(NOT_IN_ZOO)))


def make_backbones(options: EvalOptions, networks: dict[str, Any] | None = None) -> dict[str, Any]:
    """One backbone per network the chosen metrics need; ``networks`` injects loaded ones."""
    networks = networks if networks is not None else {}
    names = sorted({backbone_of(m) for m in options.metrics})
    backbones = {}
    for name in names:
        extra = {"points_per_side": options.sam_points_per_side} if name == "sam" else {}
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


def _stack(features: list[dict], key: str) -> torch.Tensor:
    return torch.from_numpy(np.stack([f[key] for f in features]))


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


def _make_metrics(options: EvalOptions, backbones) -> dict[str, Any]:
    metrics = {}
    for name in options.metrics:
        if name == "FID":
            continue
        if name == "LPIPS":
            metrics[name] = METRICS[name](backbones["lpips"].network.lins)
        elif name == "CLIP-T":
            metrics[name] = METRICS[name](caption=options.clip_t_caption)
        else:
            metrics[name] = ALL_METRICS[name]()
    return metrics


def _update_metrics(metrics, backbones, batch, images_c, feats, fid_store, options, timer) -> None:
    if "inception" in feats:
        # FID is computed from the kept features by the functional twin (below), which takes
        # the exact low-rank route for sets smaller than 2048; the bootstrap needs them anyway.
        fid_store[0].append(np.stack([f["pool"] for f in feats["inception"][0]]))
        fid_store[1].append(np.stack([f["pool"] for f in feats["inception"][1]]))
    if "LPIPS" in metrics:
        for fo, fc in zip(*feats["lpips"]):
            stages = sorted(fo)
            metrics["LPIPS"].update([torch.as_tensor(fo[k]) for k in stages], [torch.as_tensor(fc[k]) for k in stages])
    for name in ("ID", "ID-Pres"):  # the same face embeddings; ID-Pres only under synth
        if name in metrics:
            metrics[name].update(_stack(feats["face"][0], "embedding"), _stack(feats["face"][1], "embedding"))
    for name in world.ORACLE_METRICS:
        if name in metrics:
            metrics[name].update(_stack(feats["oracle"][0], "labels"), _stack(feats["oracle"][1], "labels"),
                                 [p.target_caption for p in batch])
    if "CLIP-I" in metrics:
        metrics["CLIP-I"].update(_stack(feats["clip"][0], "image"), _stack(feats["clip"][1], "image"))
    if "CLIP-T" in metrics:
        texts = [p.target_caption if options.clip_t_caption == "target" else full_caption(p.base_caption, p.target_caption)
                 for p in batch]
        text_emb = timer.run("forward:clip", backbones["clip"].encode_texts, texts)
        metrics["CLIP-T"].update(_stack(feats["clip"][1], "image"), torch.from_numpy(text_emb))
    if "Seg-Cons" in metrics:
        for fo, fc in zip(*feats["sam"]):
            metrics["Seg-Cons"].update(torch.from_numpy(SamBackbone.unpack(fo))[None], torch.from_numpy(SamBackbone.unpack(fc))[None])
    captions = [full_caption(p.base_caption, p.target_caption) for p in batch]
    for name, backbone in (("HPSv2", "hps"), ("MPS", "mps")):
        if name in metrics:
            scores = timer.run(f"forward:{backbone}", backbones[backbone].score, images_c, captions)
            metrics[name].update(torch.from_numpy(scores))


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
    metrics = _make_metrics(options, backbones)
    fid_store: tuple[list, list] = ([], [])
    found_all, reasons_all, resized_total = [], [], 0
    start = time.perf_counter()
    with torch.inference_mode():
        for first in progress_bar(range(0, len(pairs), options.batch_size), desc="scoring", unit="batch", enabled=progress):
            batch = pairs[first:first + options.batch_size]
            images_o, images_c, keys_o, keys_c, resized = timer.run("read", _read_batch, batch)
            resized_total += resized
            feats = {}
            for name, backbone in backbones.items():
                if name in ("hps", "mps"):
                    continue  # scored on customized images with their captions, below
                feats[name] = (_features(backbone, images_o, keys_o, cache, True, timer),
                               _features(backbone, images_c, keys_c, cache, options.cache_customized, timer))
            _update_metrics(metrics, backbones, batch, images_c, feats, fid_store, options, timer)
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
    per_pair = {name: metrics[name].per_pair().numpy() for name in options.metrics if name != "FID"}
    scores = Scores(pairs=pairs, per_pair=per_pair, reasons=reasons_all or [""] * len(pairs),
                    face_found=np.concatenate(found_all) if found_all else None, resized_pairs=resized_total,
                    seconds=dict(timer.seconds), identities={n: b.identity() for n, b in backbones.items()})
    if cache is not None:
        scores.cache_hits, scores.cache_misses = cache.hits, cache.misses
    if "FID" in options.metrics:
        scores.fid_features = (np.concatenate(fid_store[0]), np.concatenate(fid_store[1]))
        scores.fid_value = float("nan")
        if len(pairs) >= 2:
            start = time.perf_counter()
            scores.fid_value = float(frechet_distance(torch.from_numpy(scores.fid_features[0]), torch.from_numpy(scores.fid_features[1])))
            scores.seconds["fid"] = time.perf_counter() - start
    return scores


# ----------------------------------------------------------------------------- aggregation

@functools.lru_cache(maxsize=1)
def _installed_versions() -> tuple[tuple[str, str | None], ...]:
    # Reading package metadata scans site-packages (about a third of a second per record on
    # a loaded machine), and installed versions do not change within one process.
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return tuple(versions.items())


def library_versions() -> dict[str, str | None]:
    return dict(_installed_versions())


def _device_description(device: str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"{device.type}:{platform.processor() or platform.machine()}"


def metric_record(name: str, scores: Scores, options: EvalOptions, n: int, n_resamples: int) -> dict:
    """Everything two values must share to be comparable."""
    cls = ALL_METRICS[name]
    backbone = scores.identities[backbone_of(name)]
    metric_options = {"size_policy": preprocess.SIZE_POLICY, "alpha_background": list(preprocess.ALPHA_BACKGROUND),
                      **getattr(cls, "record_options", {})}
    if name == "CLIP-T":
        metric_options["caption"] = options.clip_t_caption
    if name in ("HPSv2", "MPS"):
        metric_options["caption"] = "full"
    if name == "MPS":
        metric_options["condition"] = "overall"
    if name == "Seg-Cons":
        metric_options["points_per_side"] = options.sam_points_per_side
    return {
        "implementation": f"{cls.__module__}.{cls.__name__}",
        "version": cls.version,
        "evaluator_version": EVALUATOR_VERSION,
        "backbone": backbone["backbone"],
        "backbone_implementation": backbone["implementation"],
        "weights": backbone["weights_source"],
        "weights_sha256": backbone["weights_sha256"],
        "weights_files": backbone.get("weights_files", []),
        "preprocessing": backbone["preprocessing"],
        "options": metric_options,
        "batch_size": options.batch_size,
        "n": n,
        "seeds": {"bootstrap": options.seed, "resamples": n_resamples, "confidence": bootstrap.LEVEL},
        "device": _device_description(options.device),
        "dtype": "float32",
        "libraries": library_versions(),
    }


def record_fingerprint(record: dict) -> str:
    """Hash of everything in a record that must agree for two values to be compared.

    Left out: the sample count and the bootstrap seeds, which differ between methods (ID's
    face-found pairs) or only move the interval, not the value.
    """
    kept = {k: v for k, v in record.items() if k not in ("n", "seeds")}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def _with_fingerprint(record: dict) -> dict:
    return {**record, "fingerprint": record_fingerprint(record)}


def summarise(scores: Scores, options: EvalOptions, identity: dict) -> tuple[list[dict], dict]:
    """Rows of ``per_pair.csv`` and the ``summary.json`` dict."""
    n = len(scores.pairs)
    indices = bootstrap.resample_indices(n, options.n_bootstrap, options.seed)
    metrics: dict[str, dict] = {}
    for name in options.metrics:
        cls = ALL_METRICS[name]
        if name == "FID":
            fid_idx = indices[: options.fid_bootstrap]
            low, high = bootstrap.fid_interval(*scores.fid_features, fid_idx) if n >= 2 else (math.nan, math.nan)
            metrics[name] = {"value": scores.fid_value, "ci_low": low, "ci_high": high, "n": n,
                             "higher_is_better": cls.higher_is_better,
                             "record": _with_fingerprint(metric_record(name, scores, options, n, len(fid_idx)))}
            continue
        values = scores.per_pair[name]
        finite = values[np.isfinite(values)]
        low, high = bootstrap.mean_interval(values, indices)
        metrics[name] = {"value": float(finite.mean()) if finite.size else math.nan, "ci_low": low, "ci_high": high,
                         "n": int(finite.size), "higher_is_better": cls.higher_is_better,
                         "record": _with_fingerprint(metric_record(name, scores, options, int(finite.size), options.n_bootstrap))}
    summary = {
        "identity": identity,
        "metrics": {name: metrics[name] for name in ALL_METRIC_ORDER if name in metrics},
        "per_category": _per_category(scores),
        "per_category_n": _category_counts(scores),
        "face_found_rate": float(scores.face_found.mean()) if scores.face_found is not None else None,
        "resized_pairs": scores.resized_pairs,
    }
    return _rows(scores), _json_safe(summary)


def _per_category(scores: Scores) -> dict[str, dict[str, float]]:
    # FID is left out: a category holds too few images for a meaningful Fréchet distance.
    by_category: dict[str, list[int]] = defaultdict(list)
    for index, pair in enumerate(scores.pairs):
        by_category[pair.category].append(index)
    table = {}
    for category in sorted(by_category):
        rows = np.array(by_category[category])
        entry = {}
        for name, values in scores.per_pair.items():
            picked = values[rows]
            picked = picked[np.isfinite(picked)]
            entry[name] = float(picked.mean()) if picked.size else math.nan
        table[category] = entry
    return table


def _category_counts(scores: Scores) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for pair in scores.pairs:
        counts[pair.category] += 1
    return dict(sorted(counts.items()))


def _rows(scores: Scores) -> list[dict]:
    rows = []
    for index, pair in enumerate(scores.pairs):
        row = {"id": pair.id, "category": pair.category}
        # The eight always have a column (empty when not scored); the world's only when scored.
        for name in (*PER_PAIR_METRICS, *(m for m in WORLD_METRIC_ORDER if m in scores.per_pair)):
            value = scores.per_pair.get(name)
            row[name] = "" if value is None or not np.isfinite(value[index]) else repr(float(value[index]))
        row["face_found"] = "" if scores.face_found is None else str(bool(scores.face_found[index])).lower()
        row["reason"] = scores.reasons[index]
        rows.append(row)
    return rows


def _json_safe(value):
    # JSON has no NaN: a value that could not be computed is written as null.
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


# ----------------------------------------------------------------------------- outputs

def per_pair_columns(metrics: Iterable[str] = ()) -> tuple[str, ...]:
    """``per_pair.csv``'s columns: ``PER_PAIR_COLUMNS`` with the scored world metrics after MPS."""
    extra = [m for m in WORLD_METRIC_ORDER if m in set(metrics)]
    return (*PER_PAIR_COLUMNS[:-2], *extra, *PER_PAIR_COLUMNS[-2:])


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
