"""The pollution lab: does fine-tuning on correlated data pollute, and does stage 2 undo it?

Every method fine-tunes the shipped world pipeline on the same correlated set with the same
number of optimizer steps and batch size (ours: its stage 2 starts from the naive checkpoint
and adds that many steps again, as the method prescribes); the control fine-tune uses the
set without the correlation. Each model then draws the same base prompts and customized
prompts (base + target) at the same seeds, and the oracle reads every image. Reported per
method, with 95% Wilson intervals: the spurious value's rate on base prompts, the target's
rate, per-attribute change rates against the original model's images, and target accuracy
on customized prompts.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import SpfError
from .attributes import NAMES, index_of
from .lab_sets import Correlation, base_prompts, write_set
from .measure import GUIDANCE, STEPS, generate

METHODS = ("naive", "control", "ours", "lora", "adalora")


@dataclass
class LabConfig:
    correlation: Correlation = field(default_factory=Correlation)
    train_images: int = 64
    steps: int = 300  # optimizer steps of every fine-tune (ours: stage 1 + the same again in stage 2)
    batch: int = 8
    lr_full: float = 1e-4  # naive / control / ours stage 1: the whole UNet
    lr_stage2: float = 1e-4  # ours stage 2: cross-attention only
    lr_adapter: float = 1e-3  # LoRA and AdaLoRA
    prompts: int = 100
    seed: int = 0
    methods: tuple[str, ...] = METHODS
    size: int = 32


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a rate (well-behaved at 0 and 1, unlike the normal one)."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _rate(flags: np.ndarray) -> dict:
    low, high = wilson(int(flags.sum()), len(flags))
    return {"value": float(flags.mean()), "ci_low": low, "ci_high": high, "n": int(len(flags))}


class Lab:
    def __init__(self, out: Path, config: LabConfig, base_model: Path, clip_model: Path):
        self.out, self.config = Path(out), config
        self.base_model, self.clip_model = Path(base_model), Path(clip_model)
        self.out.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ training
    def _common(self, data: Path, out: Path, lr: float) -> dict:
        c = self.config
        return dict(data_dir=str(data), output_dir=str(out), base_model=str(self.base_model), clip_model=str(self.clip_model),
                    train_batch_size=c.batch, learning_rate=lr, max_steps=c.steps, checkpoint_every=max(1, c.steps // 3),
                    checkpoints_total_limit=1, seed=c.seed, device="cpu")

    def _finished(self, folder: Path) -> bool:
        return (folder / "spf_config.json").is_file() and ((folder / "model_index.json").is_file() or any(folder.glob("*.safetensors")) or (folder / "adapter_config.json").is_file())

    def train(self, method: str, report=print) -> Path:
        from spf_train import baselines, stage1, stage2
        from spf_train.config import AdaLoraTrainConfig, LoraTrainConfig, Stage1Config, Stage2Config

        c = self.config
        sets = self.out / "sets"
        polluted = sets / "correlated"
        control = sets / "control"
        if not (polluted / "metadata.jsonl").is_file():
            write_set(polluted, c.correlation, c.train_images, c.seed, c.size, correlated=True)
        if not (control / "metadata.jsonl").is_file():
            write_set(control, c.correlation, c.train_images, c.seed, c.size, correlated=False)
        folder = self.out / "checkpoints" / method
        if self._finished(folder):
            return folder
        if method == "naive":
            stage1.train_stage1(Stage1Config(**self._common(polluted, folder, c.lr_full)), report=report)
        elif method == "control":
            stage1.train_stage1(Stage1Config(**self._common(control, folder, c.lr_full)), report=report)
        elif method == "ours":
            naive = self.train("naive", report)
            cfg = Stage2Config(**{**self._common(polluted, folder, c.lr_stage2), "init_from": str(naive)})
            stage2.train_stage2(cfg, report=report)
        elif method == "lora":
            baselines.train_lora(LoraTrainConfig(**self._common(polluted, folder, c.lr_adapter)), report=report)
        elif method == "adalora":
            cfg = AdaLoraTrainConfig(**self._common(polluted, folder, c.lr_adapter), tinit=c.steps // 5, tfinal=c.steps // 5)
            baselines.train_adalora(cfg, report=report)
        else:
            raise SpfError(f"Unknown lab method '{method}'; the lab trains: {', '.join(METHODS)}.")
        return folder

    # ------------------------------------------------------------------ measuring
    def _pipe(self, method: str | None):
        from ..methods import build_method

        if method is None:
            return build_method("base", "synth").pipe
        kind = {"naive": "naive", "control": "naive", "ours": "ours", "lora": "lora", "adalora": "adalora"}[method]
        return build_method(kind, "synth", checkpoint=self.out / "checkpoints" / method).pipe

    def _images(self, method: str | None, prompts: list[str], tag: str) -> np.ndarray:
        cache = self.out / "images" / f"{method or 'original'}-{tag}.npy"
        if cache.is_file():
            return np.load(cache)
        images = generate(self._pipe(method), prompts, seed=self.config.seed)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, images)
        return images

    def measure(self, oracle, report=print) -> dict:
        c, corr = self.config, self.config.correlation
        base = base_prompts(corr, c.prompts, c.seed)
        custom = [f"{p}, {corr.target_caption()}" for p in base]
        s_i, s_v = NAMES.index(corr.spurious), index_of(corr.spurious, corr.spurious_value)
        t_i, t_v = NAMES.index(corr.target), index_of(corr.target, corr.target_value)
        original = oracle.predict(self._images(None, base, "base"))
        results = {"original": self._summary(original, original, oracle.predict(self._images(None, custom, "custom")), s_i, s_v, t_i, t_v)}
        for method in c.methods:
            self.train(method, report)
            labels = oracle.predict(self._images(method, base, "base"))
            custom_labels = oracle.predict(self._images(method, custom, "custom"))
            results[method] = self._summary(labels, original, custom_labels, s_i, s_v, t_i, t_v)
            report(f"{method}: spurious rate on base prompts {results[method]['spurious_rate']['value']:.3f}, "
                   f"target accuracy {results[method]['target_accuracy']['value']:.3f}")
        summary = {"config": _jsonable(asdict(c)), "guidance": GUIDANCE, "steps": STEPS, "results": results, "verdict": verdict(results)}
        (self.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        self._grid(base)
        return summary

    @staticmethod
    def _summary(labels, original, custom_labels, s_i, s_v, t_i, t_v) -> dict:
        changed = {name: _rate(labels[:, i] != original[:, i]) for i, name in enumerate(NAMES)}
        return {
            "spurious_rate": _rate(labels[:, s_i] == s_v),
            "target_rate_unasked": _rate(labels[:, t_i] == t_v),
            "target_accuracy": _rate(custom_labels[:, t_i] == t_v),
            "spurious_rate_customized": _rate(custom_labels[:, s_i] == s_v),
            "change_rate": changed,
        }

    def _grid(self, prompts: list[str], n: int = 8) -> None:
        from PIL import Image

        rows = [self._images(None, prompts, "base")[:n]]
        for method in self.config.methods:
            rows.append(self._images(method, prompts, "custom")[:n])
        grid = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)
        Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.NEAREST).save(self.out / "grid.png")


def verdict(results: dict) -> dict:
    """The lab's goal, as numbers: pollution reproduced, and how much of it ours removes."""
    before = results["original"]["spurious_rate"]["value"]
    out = {}
    rise = {m: r["spurious_rate"]["value"] - before for m, r in results.items() if m != "original"}
    out["spurious_rise"] = rise
    if "naive" in rise and "control" in rise:
        out["pollution_reproduced"] = rise["naive"] - rise["control"] >= 0.20
    if "naive" in rise and "ours" in rise and rise["naive"] > 0:
        out["rise_cut_by_ours"] = 1 - rise["ours"] / rise["naive"]
        gap = results["naive"]["target_accuracy"]["value"] - results["ours"]["target_accuracy"]["value"]
        out["target_gap_naive_minus_ours"] = gap
        out["goal_met"] = out["rise_cut_by_ours"] >= 0.70 and gap <= 0.05
    return out


def _jsonable(data):
    return json.loads(json.dumps(data, default=str))
