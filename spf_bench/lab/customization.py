"""The pollution lab's customization mode: fine-tuning on a customization set
(:mod:`spf_bench.world.custom_sets`) against its control, and what is measured on it.

In this mode the lab's "correlated" set is a customization set (novel targets dealt in turn,
a few identities, biased attributes its captions mostly leave unsaid) and its control set
is the same spec with ``control=True``. The base prompts say every biased attribute with
another value than its biased one (:func:`~spf_bench.world.custom_sets.base_prompts`); the
customized prompt ``i`` adds the phrase of target ``i``, the targets dealt in turn.

Measured per model:

- target accuracy on customized prompts, each prompt against its own target (overall and
  per target);
- ``Pollution`` per base-prompt image: the share of the set's biased attributes the oracle
  reads at their biased value although the prompt asked for another (and per biased
  attribute, the rate at which it does);
- the verdict of :func:`verdict`, from per-model values of Target-Acc, Attr-Pres, ID-Pres and
  Pollution (``docs/synth.md`` defines it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from spf_bench.world.attributes import NAMES, index_of
from spf_bench.world.captions import attribute_phrase
from spf_bench.world.custom_sets import Bias, CustomSet, base_prompts, dealt_targets, suite_category

_DEFAULT = CustomSet()


@dataclass(frozen=True)
class Customization:
    """A customization set's spec without its size and seed, which are the lab's
    (``train_images`` and ``seed``); defaults are :class:`CustomSet`'s."""

    targets: tuple[str, ...] = _DEFAULT.targets
    identities: int = _DEFAULT.identities
    biases: tuple[Bias, ...] = _DEFAULT.biases
    say_biased: float = _DEFAULT.say_biased

    def __post_init__(self):
        self.spec(1, 0)  # CustomSet's checks, in its own sentences

    def spec(self, images: int, seed: int, control: bool = False) -> CustomSet:
        return CustomSet(targets=tuple(self.targets), images=images, identities=self.identities, biases=tuple(self.biases),
                         say_biased=self.say_biased, seed=seed, control=control)

    def prompts(self, n: int, seed: int) -> dict[str, list[str]]:
        """``base`` prompts, each prompt's ``target`` attribute (dealt in turn), its target
        ``caption`` and the suite's ``category`` of it."""
        targets = dealt_targets(tuple(self.targets), n)
        return {"base": base_prompts(tuple(self.biases), tuple(self.targets), n, seed), "target": targets,
                "caption": [attribute_phrase(t, "yes") for t in targets], "category": [suite_category(t) for t in targets]}


# ----------------------------------------------------------------------------- per image

def pollution_flags(labels: np.ndarray, biases: tuple[Bias, ...]) -> dict[str, np.ndarray]:
    """{biased attribute: whether the oracle reads it at its biased value}, per image."""
    return {b.attribute: labels[:, NAMES.index(b.attribute)] == index_of(b.attribute, b.value) for b in biases}


def pollution(labels: np.ndarray, biases: tuple[Bias, ...]) -> np.ndarray:
    """Per image, the share of the biased attributes read at their biased value (NaN without biases)."""
    flags = pollution_flags(labels, biases)
    if not flags:
        return np.full(len(labels), np.nan)
    return np.mean(np.stack(list(flags.values()), axis=1), axis=1)


def target_hits(labels: np.ndarray, targets: list[str]) -> np.ndarray:
    """Per customized image, whether the oracle reads its own prompt's target as present."""
    return np.array([labels[i, NAMES.index(t)] == index_of(t, "yes") for i, t in enumerate(targets)], dtype=bool)


def mean_interval(values: np.ndarray) -> dict:
    """Mean of per-image values in [0, 1] with a 95% Student-t interval (clipped to [0, 1])."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0}
    mean = float(values.mean())
    half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    low, high = (max(0.0, mean - half), min(1.0, mean + half)) if math.isfinite(half) else (math.nan, math.nan)
    return {"value": mean, "ci_low": low, "ci_high": high, "n": n}


def rates(custom: Customization, base: np.ndarray, original: np.ndarray, customized: np.ndarray, targets: list[str], rate) -> dict:
    """One model's oracle rates (``rate``: flags -> a Wilson-interval dict) in customization mode."""
    hits = target_hits(customized, targets)
    chosen = np.array(targets)
    novel_unasked = np.zeros(len(base), dtype=bool)
    for name in dict.fromkeys(custom.targets):
        novel_unasked |= base[:, NAMES.index(name)] == index_of(name, "yes")
    return {
        "pollution": mean_interval(pollution(base, custom.biases)),
        "pollution_by_attribute": {a: rate(f) for a, f in pollution_flags(base, custom.biases).items()},
        "pollution_customized": mean_interval(pollution(customized, custom.biases)),
        "target_accuracy": rate(hits),
        "target_accuracy_by_target": {t: rate(hits[chosen == t]) for t in dict.fromkeys(targets)},
        "target_rate_unasked": rate(novel_unasked),
        "change_rate": {name: rate(base[:, i] != original[:, i]) for i, name in enumerate(NAMES)},
    }


# ----------------------------------------------------------------------------- the verdict

PRESERVATION = ("Attr-Pres", "ID-Pres", "Pollution")  # Pollution enters as 1 - Pollution
TARGET, FALL_POINTS, REMOVED_SHARE, TARGET_POINTS = "Target-Acc", 10.0, 0.70, 5.0


def _preserved(values: dict, metric: str) -> float:
    value = values.get(metric, math.nan)
    value = math.nan if value is None else float(value)
    return 1.0 - value if metric == "Pollution" else value


def verdict_values(results: dict, run_of) -> dict[str, dict[str, float]]:
    """Per model of a lab's ``results``, the verdict's inputs: Target-Acc, Attr-Pres and ID-Pres
    as the means of the evaluator's per-pair records (``run_of(model) / per_pair.csv``, where
    it scored them; else the oracle's Target-Acc), Pollution as the oracle's mean on the
    base-prompt images."""
    import pandas as pd

    out = {}
    for model, r in results.items():
        if model == "original":
            continue  # the verdict compares fine-tunes; the original model's values stay in the results
        row = {"Pollution": r["pollution"]["value"], TARGET: r["target_accuracy"]["value"]}
        pairs = Path(run_of(model)) / "per_pair.csv"
        if r.get("metrics") and pairs.is_file():
            frame = pd.read_csv(pairs)
            row.update({k: float(frame[k].mean()) for k in (TARGET, "Attr-Pres", "ID-Pres") if k in frame})
        out[model] = row
    return out


def verdict(values: dict[str, dict[str, float]]) -> dict:
    """The customization goal, from per-model means ``{model: {metric: value}}``.

    Per preservation metric p (Attr-Pres, ID-Pres, and 1 - Pollution): naive's fall below the
    control in points, ``100 (p_control - p_naive)``; for every other model the share of that
    fall it removes, ``1 - (p_control - p_model) / (p_control - p_naive)`` (only where naive
    fell). ``pollution_reproduced``: some metric fell at least 10 points; ``removal_met``:
    ours removes at least 70% of every such fall and its Target-Acc is within 5 points of
    naive's; ``goal_met``: both. A flag that cannot be computed is absent, never assumed.
    """
    out: dict = {}
    if "naive" not in values or "control" not in values:
        return out
    naive, control = values["naive"], values["control"]
    fall = {m: 100 * (_preserved(control, m) - _preserved(naive, m)) for m in PRESERVATION}
    fall = {m: f for m, f in fall.items() if math.isfinite(f)}
    out["fall_points"] = fall
    removed = {}
    for model, row in values.items():
        if model in ("naive", "control"):
            continue
        shares = {m: 1 - 100 * (_preserved(control, m) - _preserved(row, m)) / f for m, f in fall.items() if f > 0}
        removed[model] = {m: s for m, s in shares.items() if math.isfinite(s)}
    out["removed"] = removed
    polluting = [m for m, f in fall.items() if f >= FALL_POINTS]
    out["polluting_metrics"] = polluting
    out["pollution_reproduced"] = bool(polluting)
    if "ours" in values:
        gap = 100 * (naive.get(TARGET, math.nan) - values["ours"].get(TARGET, math.nan))
        if math.isfinite(gap):
            out["target_gap_points_naive_minus_ours"] = gap
            out["target_within_5_points"] = gap <= TARGET_POINTS
        if polluting and math.isfinite(gap):
            ours = removed.get("ours", {})
            out["removed_by_ours"] = {m: ours.get(m, math.nan) for m in polluting}
            out["removal_met"] = all(ours.get(m, -math.inf) >= REMOVED_SHARE for m in polluting) and gap <= TARGET_POINTS
            out["goal_met"] = out["pollution_reproduced"] and out["removal_met"]
        elif math.isfinite(gap):
            out["goal_met"] = False  # naive did not fall 10 points below the control: nothing to remove
    return out
