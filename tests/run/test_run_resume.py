"""``spf-bench run`` interrupted during quick training, mid-batch generation and scoring, then
run again: the same numbers as an uninterrupted run, and only the interrupted unit redone.

An interruption is a KeyboardInterrupt raised inside the step (what Ctrl-C does; it passes
every ``except Exception``). Each run gets caches of its own so that nothing is shared with
the uninterrupted run but the triple set and the zoo.
"""

from __future__ import annotations

import csv
import json
import types
from pathlib import Path

import pytest

import spf_bench.benchmark as bench_run
import spf_bench.evaluation.evaluator as evaluate
import spf_bench.generation.sampling as generate
import spf_bench.methods.training as method_training
from spf_bench.benchmark import RunRequest, run_benchmark
from spf_bench.generation.sampling import GenerationSettings
from spf_bench.methods.training import QuickTraining

pytestmark = [pytest.mark.usefixtures("single_thread"), pytest.mark.slow]

METRICS = ("FID", "LPIPS", "CLIP-I", "CLIP-T")


class Interrupted(KeyboardInterrupt):
    pass


class Counters:
    """Wraps the three units of work of a run, counts them and interrupts one on request."""

    def __init__(self, monkeypatch):
        self.trained: list[str] = []
        self.rendered = 0
        self.scored: list[str] = []
        self.stop_training = False
        self.stop_after_images: int | None = None
        self.stop_scoring: str | None = None
        real_trainer, real_write, real_evaluate = method_training.run_trainer, generate.write_bytes_atomic, evaluate.evaluate_run

        def trainer(name, config, output_dir, *args, **kwargs):
            self.trained.append(name)
            real_trainer(name, config, output_dir, *args, **kwargs)
            if self.stop_training:  # killed after the last step, before the checkpoint is marked finished
                raise Interrupted

        def write(path, data):
            if self.stop_after_images is not None and self.rendered >= self.stop_after_images:
                raise Interrupted
            self.rendered += 1
            real_write(path, data)

        def score(triples_dir, images_dir, *args, method=None, **kwargs):
            self.scored.append(method)
            if method == self.stop_scoring:
                raise Interrupted
            return real_evaluate(triples_dir, images_dir, *args, method=method, **kwargs)

        monkeypatch.setattr(method_training, "run_trainer", trainer)
        monkeypatch.setattr(generate, "write_bytes_atomic", write)
        monkeypatch.setattr(evaluate, "evaluate_run", score)

    def reset(self):
        self.trained, self.rendered, self.scored = [], 0, []
        self.stop_training, self.stop_after_images, self.stop_scoring = False, None, None


def _own_cache(monkeypatch, folder: Path):
    """Trained checkpoints, training data and generations in ``folder`` (the zoo stays shared)."""
    folder.mkdir(parents=True, exist_ok=True)
    fake = types.SimpleNamespace(cache_dir=lambda: folder)
    monkeypatch.setattr(bench_run, "paths", fake)
    monkeypatch.setattr(method_training, "paths", fake)


def _request(out: Path, triples: Path | None, networks, steps: int = 1) -> RunRequest:
    return RunRequest(
        methods=["base", "naive"], out=out, weights="tiny", triples=triples, n_triples=4,
        settings=GenerationSettings("ddim", 2, 7.5, 64, 64), batch_size=2, progress=False,
        quick=QuickTraining(steps=steps, n_images=2, image_steps=2), report=lambda *_: None,
        eval_options={"metrics": METRICS, "n_bootstrap": 50, "fid_bootstrap": 5}, networks=networks,
        # method by method: the order whose scoring a kill can cut between two methods (the
        # backbone order writes every method's scores at its end; its reuse is tested with it)
        scoring="resident",
    )


def _numbers(out: Path) -> dict:
    result = {}
    for method in ("base", "naive"):
        with open(out / method / "per_pair.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        summary = json.loads((out / method / "summary.json").read_text())
        # (the model fingerprint is left out: it hashes the checkpoint folder, whose saved
        # config names the cache folder it was trained into)
        result[method] = {"pairs": rows, "metrics": summary["metrics"]}
    return result


def test_interrupted_run_resumes_to_the_uninterrupted_numbers(tmp_path, monkeypatch, tiny_networks):
    counters = Counters(monkeypatch)
    _own_cache(monkeypatch, tmp_path / "cache-a")
    whole = tmp_path / "whole"
    run_benchmark(_request(whole, None, tiny_networks))
    assert counters.trained == ["stage1"] and counters.rendered == 8 and counters.scored == ["base", "naive"]
    expected = _numbers(whole)
    triples = whole / "triples"

    _own_cache(monkeypatch, tmp_path / "cache-b")
    out = tmp_path / "resumed"
    # 1. killed at the end of quick training: the checkpoint is not taken as finished
    counters.reset()
    counters.stop_training = True
    with pytest.raises(Interrupted):
        run_benchmark(_request(out, triples, tiny_networks))
    assert counters.trained == ["stage1"] and counters.scored == ["base"]
    assert not list((tmp_path / "cache-b" / "trained").glob("naive-*"))  # only the .partial folder

    # 2. killed in naive's second batch: its first batch stays in the cache
    counters.reset()
    counters.stop_after_images = 2
    with pytest.raises(Interrupted):
        run_benchmark(_request(out, triples, tiny_networks))
    assert counters.trained == ["stage1"]  # the interrupted training, once
    assert counters.scored == []  # base's scores are reused, not scored again
    assert counters.rendered == 2

    # 3. killed while scoring naive
    counters.reset()
    counters.stop_scoring = "naive"
    with pytest.raises(Interrupted):
        run_benchmark(_request(out, triples, tiny_networks))
    assert counters.trained == [] and counters.rendered == 2  # only the batch that was in flight
    assert counters.scored == ["naive"]

    # 4. to the end: only naive's scoring again
    counters.reset()
    run_benchmark(_request(out, triples, tiny_networks))
    assert counters.trained == [] and counters.rendered == 0 and counters.scored == ["naive"]
    assert _numbers(out) == expected

    # a changed --train-steps is another checkpoint: trained, rendered and scored anew
    counters.reset()
    run_benchmark(_request(out, triples, tiny_networks, steps=2))
    assert counters.trained == ["stage1"] and counters.rendered == 4 and counters.scored == ["naive"]
    assert _numbers(out)["base"] == expected["base"]
    used = json.loads((out / "naive" / "summary.json").read_text())["identity"]["checkpoint"]
    assert json.loads((Path(used) / "spf_config.json").read_text())["max_steps"] == 2
    assert len(list((tmp_path / "cache-b" / "trained").glob("naive-*"))) == 2
