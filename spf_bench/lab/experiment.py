"""The pollution lab: does fine-tuning on correlated data pollute, and does stage 2 undo it?

Every method fine-tunes the shipped world pipeline on the same correlated set with the same
number of optimizer steps and batch size (ours and its ablations: stage 2 starts from the
naive checkpoint and adds that many steps again, as the method prescribes); the control
fine-tune uses the set without the correlation. The methods, ablations of ours included,
are the table of :mod:`.lab_methods`. Each model then draws the same base prompts and
customized prompts (base + target) at the same seeds, and the oracle reads every image.
Reported per model, with 95% Wilson intervals: the spurious value's rate on base prompts,
the target's rate, per-attribute change rates against the original model's images, and
target accuracy on customized prompts; and the suite's eight metrics on (original model on
the base prompt, model on the customized prompt) pairs, with bootstrap intervals
(:mod:`.lab_scores`). Outputs: ``summary.json``, ``summary.md``, ``grid.png`` + ``grid.txt``.

With a :class:`~.customization.Customization` (``LabConfig.customization``) the lab runs in
customization mode instead: the fine-tuning set is a customization set and the control its
unbiased control, and what is measured is :mod:`.customization`'s.

Everything is kept in ``--out`` and reused: sets, checkpoints (each marked finished with what
made it), images, and the evaluator's feature cache. ``lab.json`` pins the settings that
all of these depend on, so a second call with other settings stops instead of mixing them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from spf_bench.core.atomic import atomic_path
from spf_bench.triples.captions import full_caption
from spf_bench.core.errors import SpfError
from spf_bench.core.fingerprint import hash_path_cached
from spf_bench.core.intervals import wilson
from spf_bench.generation.sampling import GenerationSettings
from spf_bench.metrics import METRIC_ORDER
from spf_bench.metrics.fid import reset_small_set_warning
from spf_bench.core.progress import progress_bar
from spf_bench.lab import customization as lab_custom, methods as lab_methods, report as lab_report, scores as lab_scores
from spf_bench.lab.customization import Customization
from spf_bench.world.attributes import BY_NAME, NAMES, index_of
from spf_bench.lab.methods import DEFAULT_METHODS, LAB_METHODS, check_methods
from spf_bench.world import custom_sets
from spf_bench.world.sets import Correlation, base_prompts, write_set
from spf_bench.world.measure import GUIDANCE, STEPS, generate

METHODS = tuple(LAB_METHODS)
ORIGINAL = "original"  # the shipped model, before any fine-tuning


@dataclass
class LabConfig:
    correlation: Correlation = field(default_factory=Correlation)
    train_images: int = 64
    steps: int = 300  # optimizer steps of every fine-tune (ours: stage 1 + the same again in stage 2)
    batch: int = 8
    lr_full: float = 1e-4  # naive / control / ours stage 1: the whole UNet
    lr_stage2: float = 1e-4  # ours stage 2 and its ablations, whatever part trains
    # Stage 2's own steps (None: ``steps``). The paper gives stage 2 five epochs at batch 2
    # against stage 1's two at batch 8, at five times the rate: far more updates than stage 1.
    stage2_steps: int | None = None
    lr_adapter: float = 1e-3  # LoRA and AdaLoRA
    prompts: int = 100
    seed: int = 0
    methods: tuple[str, ...] = DEFAULT_METHODS
    metrics: tuple[str, ...] = METRIC_ORDER
    size: int = 32
    customization: Customization | None = None  # None: the correlation mode

    def pinned(self) -> dict:
        """What every output of a lab folder depends on (methods and metrics may be added later);
        a correlation lab pins what it pinned before the customization mode existed."""
        skip = ("methods", "metrics", "customization" if self.customization is None else "correlation")
        # A lab made before stage 2 had its own steps pins what it pinned then.
        skip += ("stage2_steps",) if self.stage2_steps is None else ()
        return {k: v for k, v in _jsonable(asdict(self)).items() if k not in skip}


def _rate(flags: np.ndarray) -> dict:
    low, high = wilson(int(flags.sum()), len(flags))
    return {"value": float(flags.mean()), "ci_low": low, "ci_high": high, "n": int(len(flags))}


class Lab:
    def __init__(self, out: Path, config: LabConfig, base_model: Path, clip_model: Path):
        self.out, self.config = Path(out), config
        self.base_model, self.clip_model = Path(base_model), Path(clip_model)
        config.methods = check_methods(config.methods)
        self.out.mkdir(parents=True, exist_ok=True)
        self._pin()

    def _pin(self) -> None:
        path, pinned = self.out / "lab.json", {**self.config.pinned(), "base_sha256": self.base_sha256}
        if path.is_file() and json.loads(path.read_text()) != pinned:
            raise SpfError(f"{self.out} holds a lab made with other settings or base weights (see {path}); use another --out folder.")
        path.write_text(json.dumps(pinned, indent=1) + "\n")

    @property
    def base_sha256(self) -> str:
        return hash_path_cached(self.base_model)

    # ------------------------------------------------------------------ training
    def _set(self, kind: str) -> Path:
        c, folder = self.config, self.out / "sets" / kind
        if not (folder / "metadata.jsonl").is_file():
            if c.customization is not None:
                spec = c.customization.spec(c.train_images, c.seed, control=kind == lab_methods.CONTROL)
                custom_sets.write(folder, spec, c.size)
            else:
                write_set(folder, c.correlation, c.train_images, c.seed, c.size, correlated=kind == lab_methods.CORRELATED)
        return folder

    def checkpoint(self, method: str) -> Path:
        return self.out / "checkpoints" / method

    def train(self, method: str, report=print) -> Path:
        """Method ``method``'s finished checkpoint, training it (and what it starts from) if needed."""
        (method,) = check_methods((method,))
        if not lab_methods.trains(method):
            return None  # training-free: drawn by the original weights with the method's own conditioning
        start = lab_methods.start_of(method)
        start_folder = self.train(start, report) if start is not None else None
        config = lab_methods.training_config(method, self.config, self._set(LAB_METHODS[method].data), start_folder,
                                             self.base_model, self.clip_model)
        clip_sha256 = hash_path_cached(self.clip_model) if lab_methods.uses_clip(method) else None
        start_sha256 = hash_path_cached(start_folder) if start_folder is not None else None
        made_of = lab_methods.identity(config, self.base_sha256, clip_sha256, start_sha256)
        folder = self.checkpoint(method)
        if lab_methods.trained(folder, made_of):
            return folder
        for stale in self._image_caches(method).values():  # drawn by a checkpoint no longer there
            stale.unlink(missing_ok=True)
        return lab_methods.train(method, config, folder, made_of, report)

    # ------------------------------------------------------------------ drawing
    def prompts(self) -> dict[str, list[str]]:
        """The ``base`` prompts and the ``custom`` ones (base i with target i's phrase)."""
        base, targets = self._plan()["base"], self.targets()
        return {"base": base, "custom": [full_caption(p, t) for p, t in zip(base, targets)]}

    def _plan(self) -> dict[str, list[str]]:
        """Per prompt: ``base``, ``target`` attribute, its target ``caption`` and ``category``."""
        c = self.config
        if c.customization is not None:
            return c.customization.prompts(c.prompts, c.seed)
        corr, n = c.correlation, c.prompts
        return {"base": base_prompts(corr, n, c.seed), "target": [corr.target] * n, "caption": [corr.target_caption()] * n,
                "category": [BY_NAME[corr.target].category] * n}

    def targets(self) -> list[str]:
        """Each customized prompt's target caption."""
        return self._plan()["caption"]

    def target_hits(self, custom_labels: np.ndarray) -> np.ndarray:
        """Per customized image (oracle labels), whether it shows its own prompt's target."""
        if self.config.customization is not None:
            return lab_custom.target_hits(custom_labels, self._plan()["target"])
        corr = self.config.correlation
        return custom_labels[:, NAMES.index(corr.target)] == index_of(corr.target, corr.target_value)

    def _model(self, model: str):
        from spf_bench.methods.registry import build_method

        if model == ORIGINAL:
            return build_method("base", lab_scores.WEIGHTS)
        checkpoint = self.checkpoint(model) if lab_methods.trains(model) else None
        return build_method(LAB_METHODS[model].suite, lab_scores.WEIGHTS, checkpoint=checkpoint)

    def images(self, model: str) -> dict[str, np.ndarray]:
        """uint8 images of ``model`` on the "base" and the "custom" prompts, each drawn once
        (the pipeline is built only when one of them is not yet on disk)."""
        caches = self._image_caches(model)
        missing = [kind for kind, path in caches.items() if not path.is_file()]
        if missing:
            built, prompts, targets = self._model(model), self.prompts(), self.targets()
            for kind in missing:
                encode = _conditioning(built, prompts["base"], targets if kind == "custom" else [""] * len(targets))
                # Saved beside and renamed into place: a killed save never looks like a drawing.
                with atomic_path(caches[kind]) as tmp, open(tmp, "wb") as handle:
                    np.save(handle, generate(built.pipe, prompts[kind], seed=self.config.seed, encode=encode))
        return {kind: np.load(path) for kind, path in caches.items()}

    def _image_caches(self, model: str) -> dict[str, Path]:
        return {kind: self.out / "images" / f"{model}-{kind}.npy" for kind in ("base", "custom")}

    # ------------------------------------------------------------------ measuring
    def measure(self, oracle, report=print) -> dict:
        c = self.config
        models = [ORIGINAL, *c.methods]
        reset_small_set_warning()  # one FID small-set warning for the whole lab, not one per model
        # One bar over the lab's plan: train every method, draw every model, score them.
        with progress_bar(total=len(c.methods) + len(models) + 1, desc="lab", unit="step") as bar:
            for method in c.methods:
                self.train(method, report)
                bar.update()
            images = {}
            for m in models:
                images.update({(m, kind): drawn for kind, drawn in self.images(m).items()})
                bar.update()
            labels = {key: oracle.predict(value) for key, value in images.items()}
            results = {m: self._rates(labels[(m, "base")], labels[(ORIGINAL, "base")], labels[(m, "custom")]) for m in models}
            for m, metrics in self._scores(images).items():
                results[m]["metrics"] = metrics
            bar.update()
        custom = c.customization
        for m in c.methods:
            shown = "pollution" if custom is not None else "spurious_rate"
            report(f"{m}: {shown.replace('_', ' ')} on base prompts {results[m][shown]['value']:.3f}, "
                   f"target accuracy {results[m]['target_accuracy']['value']:.3f}")
        judged = verdict(results) if custom is None else lab_custom.verdict(lab_custom.verdict_values(results, self.run))
        # A correlation lab's summary stays what it was before the customization mode existed.
        config = {k: v for k, v in _jsonable(asdict(c)).items() if not (k == "customization" and v is None)}
        summary = {"config": config, "guidance": GUIDANCE, "steps": STEPS,
                   "methods": {m: asdict(LAB_METHODS[m]) for m in c.methods}, "results": results, "verdict": judged}
        (self.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        legend = lab_report.write_grid(self.out / "grid.png", images, models)
        render = lab_report.render_summary if custom is None else lab_report.render_customization_summary
        (self.out / "summary.md").write_text(render(summary, self.prompts(), legend))
        return summary

    def _rates(self, labels, original, custom_labels) -> dict:
        if self.config.customization is not None:
            return lab_custom.rates(self.config.customization, labels, original, custom_labels, self._plan()["target"], _rate)
        corr = self.config.correlation
        s_i, s_v = NAMES.index(corr.spurious), index_of(corr.spurious, corr.spurious_value)
        t_i, t_v = NAMES.index(corr.target), index_of(corr.target, corr.target_value)
        return {
            "spurious_rate": _rate(labels[:, s_i] == s_v),
            "target_rate_unasked": _rate(labels[:, t_i] == t_v),
            "target_accuracy": _rate(self.target_hits(custom_labels)),
            "spurious_rate_customized": _rate(custom_labels[:, s_i] == s_v),
            "change_rate": {name: _rate(labels[:, i] != original[:, i]) for i, name in enumerate(NAMES)},
        }

    def _scores(self, images: dict) -> dict[str, dict]:
        """Saves every image as a triple set and method runs (docs/formats.md), then scores the
        suite's metrics per model on (original on base prompt, model on customized prompt)."""
        c, plan = self.config, self._plan()
        triples = lab_scores.lab_triples(plan["base"], plan["caption"], plan["category"], c.seed)
        settings = GenerationSettings(lab_scores.sampler_of(self.base_model), STEPS, GUIDANCE, c.size, c.size)
        lab_scores.write_triples(self.out / "triples", triples, images[(ORIGINAL, "base")], settings, self.base_sha256)
        models = [ORIGINAL, *c.methods]
        for m in models:
            lab_scores.write_run(self.run(m), triples, images[(m, "base")], lab_scores.RECONSTRUCTION)
            lab_scores.write_run(self.run(m), triples, images[(m, "custom")])
        if not c.metrics:
            return {}
        networks = lab_scores.load_networks(c.metrics)
        return {m: lab_scores.score_run(self.out / "triples", self.run(m), m, c.metrics, networks,
                                        self._checkpoint_sha256(m)) for m in models}

    def _checkpoint_sha256(self, model: str) -> str | None:
        return hash_path_cached(self.checkpoint(model)) if model != ORIGINAL and lab_methods.trains(model) else None

    def run(self, model: str) -> Path:
        """``model``'s method-run folder: customized images in ``images``, base-prompt ones in
        ``reconstruction``, the evaluator's ``per_pair.csv`` and ``summary.json``."""
        return self.out / "runs" / model


def verdict(results: dict) -> dict:
    """The lab's goal, as numbers: pollution reproduced, and how much of it ours removes."""
    before = results["original"]["spurious_rate"]["value"]
    out = {}
    rise = {m: r["spurious_rate"]["value"] - before for m, r in results.items() if m != "original"}
    out["spurious_rise"] = rise
    if "naive" in rise and "control" in rise:
        out["pollution_reproduced"] = rise["naive"] - rise["control"] >= 0.20
    if "naive" in rise and rise["naive"] > 0:
        # For every model, the share of naive's rise it removes: the ablations' rows say
        # which part of ours does the removing.
        out["rise_cut"] = {m: 1 - r / rise["naive"] for m, r in rise.items() if m != "naive"}
    if "naive" in rise and "ours" in rise and rise["naive"] > 0:
        out["rise_cut_by_ours"] = 1 - rise["ours"] / rise["naive"]
        gap = results["naive"]["target_accuracy"]["value"] - results["ours"]["target_accuracy"]["value"]
        out["target_gap_naive_minus_ours"] = gap
        out["removal_met"] = out["rise_cut_by_ours"] >= 0.70 and gap <= 0.05
        # The goal holds only where the world polluted in the first place: removing most of
        # a rise too small to call pollution proves little.
        out["goal_met"] = out["removal_met"] and out.get("pollution_reproduced", False)
    return out


def _jsonable(data):
    return json.loads(json.dumps(data, default=str))


def _conditioning(built, bases: list[str], targets: list[str]):
    """A method's own text conditioning (Magnet's) of the lab's prompts ``bases[i] ⊕ targets[i]``,
    or None for the pipeline's. Each prompt is handed over as the (base, target) pair it was made
    from, looked up rather than parsed back, like every job the suite's generator hands a method."""
    if built.encode is None:
        return None
    pairs = {"": ("", ""), **{full_caption(base, target): (base, target) for base, target in zip(bases, targets)}}
    return lambda texts: built.encode_captions([pairs[text] for text in texts])
