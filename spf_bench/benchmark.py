"""One benchmark run: triple set -> each method's checkpoint -> its portraits -> scores -> leaderboard.

Under ``accelerate launch`` with several processes (one per GPU), every process renders its
share of the missing images into the shared cache; the main process builds the triple set
and trains checkpoints first (the others then find them finished), links the images, scores
and writes the leaderboard.

``OUT/<method>/images`` (and ``reconstruction``) are filled from the generation cache, then
scored by :func:`spf_bench.evaluation.evaluator.evaluate_run`, then ``OUT/leaderboard.*`` is rewritten
from every method run in OUT. Without a given triple set one is built in ``OUT/triples``;
without a given checkpoint a small one is trained on the tiny or synth weights (cached).
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from spf_bench.core.agreement import check_agreement
from spf_bench.core.processes import broadcast_from_main, distributed_state, process_device
from spf_bench.core.atomic import link_atomic, sweep_stale_temporaries, write_bytes_atomic
from spf_bench.generation.base_model import base_sha256, dtype_name, parse_dtype
from spf_bench.triples.compose import compose_for
from spf_bench.core.errors import SpfError
from spf_bench.generation.sampling import (
    GenerationSettings,
    Job,
    fill_cache,
    generate,
)
from spf_bench.methods.training import QuickTraining, checkpoint_for
from spf_bench.methods.registry import MethodModel, build_method, canonical_method, get_method
from spf_bench.metrics.fid import reset_small_set_warning
from spf_bench.generation.protocol import eval_options_for, settings_for, source_record
from spf_bench.triples.triple_set import TripleSet, build_triple_set, load_triple_set
from spf_bench.core import paths
from spf_bench.core.progress import progress_shown
from spf_bench.evaluation.score_reuse import finished_summary, scoring_key


@dataclass
class RunRequest:
    methods: list[str]
    out: Path = Path("runs")
    weights: str = "tiny"
    triples: Path | None = None
    checkpoints: dict[str, Path] = field(default_factory=dict)
    reconstruction: bool = False
    n_triples: int | None = None  # size of the set built when none is given
    triple_seed: int = 0
    settings: GenerationSettings | None = None  # for a set built here; a given set brings its own
    batch_size: int = 8
    device: torch.device = torch.device("cpu")
    dtype: str | None = None  # None: the dtype the triple set's originals were made in
    quick: QuickTraining = QuickTraining()
    evaluate: bool = True
    eval_options: dict = field(default_factory=dict)  # EvalOptions overrides (metrics, batch size ...)
    progress: bool = True
    report: object = print
    processes: object = None  # accelerate's PartialState when launched with several processes
    networks: dict | None = None  # metric networks already loaded on these weights, by zoo name (shared)
    # "backbone": every method generated first, then scored one metric network at a time,
    # each loaded once and freed (bounded memory); "resident": each method scored right after
    # its generation with every metric network kept loaded (and added to ``networks``).
    scoring: str = "backbone"
    max_memory_gb: float | None = None  # scoring's batch sizes shrink to fit; refused up front if it cannot


def _main_first(state):
    """accelerate's ``main_process_first`` when distributed, a no-op otherwise."""
    return state.main_process_first() if state is not None else contextlib.nullcontext()


def run_benchmark(req: RunRequest) -> dict:
    """Run every method of ``req``; returns {method: summary or the run record when not scored}."""
    with progress_shown(req.progress):  # the bars of the trainings it starts too
        return _run_benchmark(req)


def _run_benchmark(req: RunRequest) -> dict:
    if not req.methods:
        raise SpfError("Name at least one method with --method.")
    reset_small_set_warning()  # a small set's FID warning: once per run, not once per method
    req.methods = [canonical_method(name) for name in req.methods]  # old names: one name per method in the results
    for name in req.methods:
        get_method(name)  # fail on a typo before any work
    if req.scoring not in ("backbone", "resident"):
        raise SpfError(f"Scoring order must be 'backbone' or 'resident', not '{req.scoring}'.")
    if req.evaluate and req.max_memory_gb is not None:
        _check_budget(req)  # before the triple set, the checkpoints and the pipelines
    out = Path(req.out)
    if req.processes is None:
        req.processes = distributed_state(req.device)
    req.device = process_device(req.processes, req.device)
    if _is_main(req):
        _sweep(out, req.report)
    clock = time.perf_counter()
    with _main_first(req.processes):
        ts = _triple_set(req, out)
    req.report(f"triple set {ts.root}: {len(ts.triples)} triples ready in {time.perf_counter() - clock:.1f} s")
    # every process of a launch must render and score the same job, or the shards mix two
    check_agreement({"triple set": ts.sha256, "weights": base_sha256(req.weights), "options": _options(req)},
                    "this benchmark launch")
    results = {}
    if req.scoring == "resident":
        # the metrics' networks, loaded once and shared by every method's scoring (and by the
        # caller's later runs when it passes a dict of its own)
        networks: dict = req.networks if req.networks is not None else {}
        for name in dict.fromkeys(req.methods):  # a method named twice runs once
            results[name] = run_method(req, ts, name, out / name, networks)
    else:
        for name in dict.fromkeys(req.methods):
            results[name] = run_method(req, ts, name, out / name, score=False)
        if req.evaluate:
            clock = time.perf_counter()
            scored = _score_backbone_major(req, ts, out, results)  # every process computes its share
            if _is_main(req):
                results.update(scored)
                req.report(f"scoring {len(results)} method(s) backbone by backbone in {time.perf_counter() - clock:.1f} s")
    if req.evaluate and _is_main(req):
        from spf_bench.results.tables import write_leaderboard

        write_leaderboard(out)
    return results


def _options(req: RunRequest) -> dict:
    """What, besides the triple set and weights, decides the images and scores of a run."""
    return {"methods": list(req.methods), "out": str(Path(req.out).resolve()), "weights": req.weights,
            "checkpoints": {k: str(v) for k, v in sorted(req.checkpoints.items())}, "reconstruction": req.reconstruction,
            "dtype": req.dtype, "quick training": repr(req.quick), "evaluate": req.evaluate,
            "eval options": json.dumps(req.eval_options, sort_keys=True, default=str)}


def _sweep(out: Path, report) -> None:
    """Remove the temporaries that killed processes left in the run folder and in the cache
    (generations, trained checkpoints, training sets, features, the tiny zoo): a temporary
    whose writer is alive is kept."""
    removed = sum(sweep_stale_temporaries(folder) for folder in (out, paths.cache_dir()) if folder.is_dir())
    if removed:
        report(f"removed {removed} unfinished temporaries that killed runs left behind")


def _triple_set(req: RunRequest, out: Path) -> TripleSet:
    if req.triples is not None:
        ts = load_triple_set(req.triples)
    else:
        folder = out / "triples"
        n = req.n_triples if req.n_triples is not None else source_record(req.weights).n_triples
        settings = req.settings or settings_for(req.weights)
        dtype = parse_dtype(req.dtype or "float32")
        build_triple_set(folder, compose_for(req.weights, n, seed=req.triple_seed), weights=req.weights, settings=settings,
                         seed_policy=f"composed captions and per-triple seeds from seed {req.triple_seed}",
                         batch_size=req.batch_size, device=req.device, dtype=dtype, progress=req.progress)
        ts = load_triple_set(folder)
    if ts.info["weights"] != req.weights or ts.info["base_model_sha256"] != base_sha256(req.weights):
        raise SpfError(f"The triple set {ts.root} was made with the '{ts.info['weights']}' base model "
                       f"(sha256 {ts.info['base_model_sha256'][:12]}), not with these '{req.weights}' weights; "
                       f"run with --weights {ts.info['weights']} or build a set for these weights.")
    return ts


def run_method(req: RunRequest, ts: TripleSet, name: str, folder: Path, networks: dict | None = None,
               score: bool = True) -> dict:
    """Generate and (unless ``score`` is False: the run record) score one method into ``folder``."""
    spec = get_method(name)
    checkpoint = req.checkpoints.get(name)
    clock = time.perf_counter()
    if checkpoint is None and spec.checkpoint is not None:
        with _main_first(req.processes):
            checkpoint = checkpoint_for(name, req.weights, req.quick, report=req.report, device=str(req.device))
        req.report(f"{name}: checkpoint ready in {time.perf_counter() - clock:.1f} s")
    dtype = parse_dtype(req.dtype or ts.info.get("dtype", "float32"))
    started = time.perf_counter()
    model = build_method(name, req.weights, checkpoint, device=req.device, dtype=dtype)
    check_agreement({f"{name}'s model": model.fingerprint}, "this benchmark launch")
    settings = ts.settings
    cache_root = paths.cache_dir() / "generations"
    # the captions travel apart: a method that treats the target differently (Magnet) reads them so
    jobs = [Job(t.id, t.base_caption, t.seed, t.target_caption) for t in ts.triples]
    _render(model, jobs, settings, folder / "images", cache_root, req, name)
    if req.reconstruction:
        _reconstruct(model, ts, name, folder / "reconstruction", cache_root, req)
    if not _is_main(req):
        return {}
    record = _run_record(req, ts, name, model, checkpoint, dtype, time.perf_counter() - started)
    write_bytes_atomic(folder / "run.json", (json.dumps(record, indent=1) + "\n").encode("utf-8"))
    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # the pipeline's memory goes back before any metric network loads
    req.report(f"{name}: generation in {record['generation_seconds']:.1f} s")
    if not req.evaluate or not score:
        return record
    key = scoring_key(record, req.eval_options, req.reconstruction)
    finished = finished_summary(folder, key)
    if finished is not None:
        req.report(f"{name}: scores of an earlier run with the same model, images and options reused")
        return finished
    clock = time.perf_counter()
    summary = _score(req, ts, folder, {**record, "scoring_key": key}, {} if networks is None else networks)
    req.report(f"{name}: scoring in {time.perf_counter() - clock:.1f} s")
    return summary


def _is_main(req: RunRequest) -> bool:
    return req.processes is None or req.processes.is_main_process


def _render(model: MethodModel, jobs: list[Job], settings: GenerationSettings, folder: Path, cache_root: Path,
            req: RunRequest, desc: str) -> None:
    state = req.processes
    if state is not None:
        fill_cache(model, jobs, settings, cache_root, req.batch_size, req.progress and state.is_main_process, desc,
                   shard=(state.process_index, state.num_processes))
        state.wait_for_everyone()
        if not state.is_main_process:
            return
    generate(model, jobs, settings, folder, cache_root, req.batch_size, req.progress, desc=desc)


def _reconstruct(model: MethodModel, ts: TripleSet, name: str, folder: Path, cache_root: Path, req: RunRequest) -> None:
    if get_method(name).draws_originals:
        if not _is_main(req):
            return
        # The base model on the base caption with the set's seed and settings *is* the
        # original (tested bit for bit), so it is linked rather than rendered again.
        for t in ts.triples:
            link_atomic(ts.original(t.id), folder / f"{t.id}.png")
        return
    jobs = [Job(t.id, t.base_caption, t.seed) for t in ts.triples]
    _render(model, jobs, ts.settings, folder, cache_root, req, f"{name} (reconstruction)")


def _run_record(req, ts: TripleSet, name, model: MethodModel, checkpoint, dtype, seconds) -> dict:
    return {
        "method": name, "fingerprint": model.fingerprint, "checkpoint": str(checkpoint) if checkpoint else None,
        "checkpoint_sha256": model.checkpoint_sha256, "weights": req.weights, "triples_dir": str(ts.root.resolve()),
        "triples_sha256": ts.sha256, "settings": ts.settings.to_dict(), "dtype": dtype_name(dtype),
        "device": str(req.device), "generation_seconds": round(seconds, 2),
    }


def _score(req: RunRequest, ts: TripleSet, folder: Path, record: dict, networks: dict) -> dict:
    from spf_bench.evaluation.evaluator import evaluate_run
    from spf_bench.zoo import load

    # The world's oracle is not a zoo network: the evaluator loads it and adds it to ``networks``.
    for name in _metric_networks(req):
        if name not in networks:
            networks[name] = load(name, source=req.weights, device=req.device)
    common = dict(weights=req.weights, method=record["method"], checkpoint_sha256=record["checkpoint_sha256"],
                  progress=req.progress, write=False, device=str(req.device), networks=networks,
                  **eval_options_for(req.weights, **req.eval_options))
    result = evaluate_run(ts.root, folder / "images", **common)
    rec = None
    if req.reconstruction:
        rec = evaluate_run(ts.root, folder / "reconstruction", **{**common, "metrics": _preservation(req)})
    return _write_scores(ts, folder, record, result, rec)


def _preservation(req: RunRequest) -> tuple[str, ...]:
    from spf_bench.metrics import registry

    # (choice) the reconstruction analysis scores the preservation metrics among those named,
    # else the paper's (Sec. 4.4), whose table it reproduces
    return tuple(registry.of_group(req.eval_options.get("metrics") or registry.paper_metrics(), registry.PRESERVATION))


def _write_scores(ts: TripleSet, folder: Path, record: dict, result, reconstruction=None) -> dict:
    summary = result.summary
    # The manifest's own sha256 is the evaluator's set identity; ours (settings + image
    # hashes) is kept beside it, with what identifies the run's model and settings.
    summary["identity"] = {**summary.get("identity", {}), **{k: v for k, v in record.items() if k not in summary.get("identity", {})},
                           "set_sha256": ts.sha256}
    if reconstruction is not None:
        summary["reconstruction"] = reconstruction.summary.get("metrics", {})
    from spf_bench.evaluation.evaluator import write_outputs

    write_outputs(folder, result.per_pair_rows, summary)
    return summary


def _metric_networks(req: RunRequest) -> tuple[str, ...]:
    from spf_bench.evaluation.evaluator import zoo_networks_for
    from spf_bench.metrics import registry

    return zoo_networks_for(req.eval_options.get("metrics", registry.default_metrics()))


def _check_budget(req: RunRequest) -> None:
    from spf_bench.evaluation.memory_budget import plan_batches

    options = eval_options_for(req.weights, **req.eval_options)
    plan_batches(_metric_networks(req), req.weights, options.get("batch_size", 8), req.max_memory_gb)


def _score_backbone_major(req: RunRequest, ts: TripleSet, out: Path, records: dict) -> dict:
    """Every method's images (and reconstructions) scored together, one metric network at a time."""
    from spf_bench.evaluation.backbone_major import score_jobs, scoring_job
    from spf_bench.evaluation.sharded import fill_share, share_report

    jobs, slots, summaries, keyed = [], [], {}, {}
    for name, record in records.items() if _is_main(req) else ():  # only the main process holds the records
        key = scoring_key(record, req.eval_options, req.reconstruction)
        finished = finished_summary(out / name, key)
        if finished is not None:
            req.report(f"{name}: scores of an earlier run with the same model, images and options reused")
            summaries[name] = finished
            continue
        keyed[name] = {**record, "scoring_key": key}
        common = dict(method=record["method"], checkpoint_sha256=record["checkpoint_sha256"], device=str(req.device),
                      **eval_options_for(req.weights, **req.eval_options))
        jobs.append(scoring_job(ts.root, out / name / "images", req.weights, **common))
        slots.append((name, "images"))
        if req.reconstruction:
            jobs.append(scoring_job(ts.root, out / name / "reconstruction", req.weights,
                                    **{**common, "metrics": _preservation(req)}))
            slots.append((name, "reconstruction"))
    if req.processes is not None and req.processes.num_processes > 1:
        # the others learn from the main process which jobs still need scores, and all of
        # them fill the feature cache, each its share of the forward passes
        jobs = broadcast_from_main(req.processes, jobs)
        counts = fill_share(jobs, req.processes, device=req.device, max_memory_gb=req.max_memory_gb,
                            progress=req.progress and _is_main(req))
        req.report(share_report(counts, req.processes))
        if not _is_main(req):
            return {}
    scored = dict(zip(slots, score_jobs(jobs, device=req.device, networks=req.networks, progress=req.progress,
                                        max_memory_gb=req.max_memory_gb)))
    for name, record in keyed.items():
        summaries[name] = _write_scores(ts, out / name, record, scored[(name, "images")],
                                        scored.get((name, "reconstruction")))
    return {name: summaries[name] for name in records}

