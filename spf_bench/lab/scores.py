"""The lab's images scored by the suite's own evaluator, so its eight metrics are the
benchmark's metrics and not a re-implementation.

The original model's images on the base prompts become a triple set in the manifest format
of ``docs/formats.md`` (``OUT/triples``: caption ``i`` drawn with seed ``lab seed + i``, the
lab's sampler, steps and guidance); each model's images on the customized prompts become a
method run (``OUT/runs/<model>/images``; its base-prompt images go to the run's
``reconstruction`` folder), scored by :func:`spf_bench.evaluation.evaluator.evaluate_run`
on the ``synth`` weights, which writes the run's ``per_pair.csv`` and ``summary.json`` beside
its images. Features are cached by the evaluator, so scoring again costs little.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from spf_bench.core.atomic import write_bytes_atomic
from spf_bench.triples.captions import Triple, triple_id
from spf_bench.core.errors import SpfError
from spf_bench.generation.sampling import SAMPLERS, GenerationSettings, png_bytes
from spf_bench.triples.triple_set import TripleSet, read_manifest, set_info, verify_images
from spf_bench.core.fingerprint import sha256_file

WEIGHTS = "synth"
SEED_POLICY = "caption i drawn with seed (lab seed + i)"


def sampler_of(base_model: Path) -> str:
    """The suite's name for the scheduler the base pipeline folder ships (the lab samples with it)."""
    path = Path(base_model) / "scheduler" / "scheduler_config.json"
    name = json.loads(path.read_text())["_class_name"]
    by_class = {cls: key for key, cls in SAMPLERS.items()}
    if name not in by_class:
        raise SpfError(f"The base model's scheduler {name} ({path}) is none of the suite's samplers ({', '.join(SAMPLERS)}).")
    return by_class[name]


def write_triples(folder: Path, triples: list[Triple], originals: np.ndarray, settings: GenerationSettings,
                  base_sha256: str) -> TripleSet:
    """``folder`` as a finished triple set of ``originals`` (kept as it is when it already holds them)."""
    folder = Path(folder)
    if (folder / "manifest.json").is_file():
        ts = read_manifest(folder)
        if ts.triples == triples and ts.complete:
            verify_images(ts)
            return ts
    ts = TripleSet(folder, set_info(WEIGHTS, base_sha256, settings, torch.float32, SEED_POLICY), list(triples), {})
    for t, image in zip(triples, originals):
        write_bytes_atomic(ts.original(t.id), png_bytes(image))
        ts.hashes[t.id] = sha256_file(ts.original(t.id))
    ts.save()
    return ts


def lab_triples(prompts: list[str], target_captions: list[str], categories: list[str], seed: int) -> list[Triple]:
    """Triple ``i``: base prompt ``i`` with its own target caption and category."""
    if not len(prompts) == len(target_captions) == len(categories):
        raise SpfError(f"The lab has {len(prompts)} prompts but {len(target_captions)} targets and {len(categories)} categories.")
    return [Triple(triple_id(i), category, p, target, seed + i)
            for i, (p, target, category) in enumerate(zip(prompts, target_captions, categories))]


CUSTOMIZED, RECONSTRUCTION = "images", "reconstruction"  # a method run's folders (docs/formats.md)


def write_run(run: Path, triples: list[Triple], images: np.ndarray, kind: str = CUSTOMIZED) -> Path:
    """``run/<kind>/<id>.png`` per triple: the customized images (CUSTOMIZED) or the base-prompt
    ones (RECONSTRUCTION, the suite's name for a model on c_b); unchanged files are left alone."""
    folder = Path(run) / kind
    for t, image in zip(triples, images):
        data, path = png_bytes(image), folder / f"{t.id}.png"
        if not path.is_file() or path.read_bytes() != data:
            write_bytes_atomic(path, data)
    return folder


def load_networks(metrics: tuple[str, ...]) -> dict:
    """The evaluator's networks on the synth weights, loaded once for all of the lab's runs."""
    from spf_bench import zoo
    from spf_bench.evaluation.evaluator import zoo_networks_for

    # The world's oracle is no zoo network: the evaluator loads it itself (and a world
    # metric's other backbones are zoo networks like any).
    return {name: zoo.load(name, source=WEIGHTS) for name in zoo_networks_for(metrics)}


def score_run(triples_dir: Path, run: Path, method: str, metrics: tuple[str, ...], networks: dict,
              checkpoint_sha256: str | None) -> dict:
    """Each metric's value and 95% interval for one run, as ``{name: {value, ci_low, ci_high,
    n, higher_is_better, record}}``; the evaluator's full output lands in ``run``."""
    from spf_bench.evaluation.evaluator import evaluate_run
    from spf_bench.generation.protocol import eval_options_for

    result = evaluate_run(triples_dir, Path(run) / "images", weights=WEIGHTS, out_dir=run, method=method,
                          checkpoint_sha256=checkpoint_sha256, networks=networks, progress=False, write=True,
                          **eval_options_for(WEIGHTS, metrics=tuple(metrics)))
    out = {}
    for name, entry in result.summary["metrics"].items():
        # The full record (libraries, weights, preprocessing) stays in the run's summary.json;
        # its fingerprint says whether two lab values are comparable.
        out[name] = {**{k: v for k, v in entry.items() if k != "record"}, "record": entry["record"]["fingerprint"]}
    return out
