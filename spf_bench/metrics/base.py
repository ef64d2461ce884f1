"""The contract every metric of the suite follows, and the shape per-pair metrics share.

A metric is a torchmetrics :class:`~torchmetrics.Metric`: its states are declared with
``add_state`` (so distributed runs gather them for free), it overrides only ``update`` and
``compute``, and carries ``higher_is_better``. The math lives once in private
``_<metric>_update`` helpers of its module, called by both the class and its functional twin.

Metrics here take *features* (embeddings, masks, scores), never images: the evaluator runs
every backbone once per batch and hands the same features to all metrics that need them.

Everything the rest of the suite knows about a metric is declared on its class
(:class:`MetricContract`): the evaluator, the tables, the leaderboard, the report, the
command-line help and the lab read it from there, through :mod:`spf_bench.metrics.registry`,
and never name a metric themselves. ``docs/extending.md`` shows a metric written outside the
suite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

PRESERVATION = "preservation"
RESPONSIVENESS = "responsiveness"
OVERALL = "overall"
GROUPS = (PRESERVATION, RESPONSIVENESS, OVERALL)
# The heading a group's columns carry in tables; a metric may ask for another (the world's).
GROUP_HEADINGS = {PRESERVATION: "Preservation", RESPONSIVENESS: "Responsiveness", OVERALL: "Overall"}
# Value ranges a metric declares (its intervals are kept inside).
UNBOUNDED = (-math.inf, math.inf)
NON_NEGATIVE = (0.0, math.inf)
COSINE = (-1.0, 1.0)
UNIT = (0.0, 1.0)


@dataclass
class FeatureBatch:
    """One batch of pairs as the evaluator hands it to every metric's :meth:`MetricContract.feed`.

    ``features[backbone]`` holds (originals', customized') feature dicts, one per pair, for
    each backbone that encodes images; backbones that score an image with a caption (HPSv2,
    MPS) are reached through :meth:`call`, which times the pass under the backbone's name.
    """

    pairs: list  # each with id, category, base_caption, target_caption
    features: dict[str, tuple[list[dict], list[dict]]]
    customized: list[np.ndarray]  # the customized images, uint8 [H, W, 3]
    backbones: dict[str, Any]
    options: Any  # the evaluator's options (caption choices, SAM grid ...)
    timer: Callable | None = None  # timer(key, fn, *args)

    def stacked(self, backbone: str, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Feature ``key`` of ``backbone`` as two stacked tensors (originals, customized)."""
        sides = self.features[backbone]
        return tuple(torch.from_numpy(np.stack([f[key] for f in side])) for side in sides)

    def call(self, backbone: str, method: str, *args):
        fn = getattr(self.backbones[backbone], method)
        return self.timer(f"forward:{backbone}", fn, *args) if self.timer else fn(*args)


class MetricContract:
    """What the suite reads off a metric class; a plug-in metric declares the same.

    - ``name``: its column and key everywhere; ``group``: preservation, responsiveness or
      overall (tables group columns by it; the world's metrics join chosen metrics of theirs);
    - ``higher_is_better`` and ``decimals`` (tables round and rank with them);
    - ``backbones``: the backbones (:data:`spf_bench.metrics.backbones.BACKBONES`) whose
      features it reads; the first one's identity goes into its record;
    - ``per_pair``: one value per pair (a ``per_pair.csv`` column, mean with a paired
      bootstrap interval) or, when False, one value of the whole set (:class:`SetMetric`);
    - ``in_paper``: one of the paper's eight: tables and ``per_pair.csv`` always have its
      column and the paper's reported rows fill it; any other metric has a column only when
      a run scored it;
    - ``default``: scored when no metric is named; ``weights``: scored only on this weight
      source (then it joins the chosen metrics of its group automatically);
    - ``heading``: its table group's heading when not its group's own;
    - ``record_options`` / :meth:`options_record`: what goes into its record's options;
    - ``tradeoff_rank``: preference as an axis of the report's preservation-vs-responsiveness
      picture (lower first; None: never an axis);
    - ``value_range``: the (low, high) every value lies in by construction (a cosine's [-1, 1],
      a distance's [0, inf)); intervals never leave it (:func:`spf_bench.metrics.bootstrap.pair_interval`);
    - ``rate``: a pair scores 1 (hit) or 0 (miss), so a mean is a rate and gets a Wilson interval.
    """

    name: ClassVar[str]
    group: ClassVar[str]
    higher_is_better: ClassVar[bool]
    decimals: ClassVar[int] = 3
    version: ClassVar[str] = "1"
    backbones: ClassVar[tuple[str, ...]] = ()
    per_pair: ClassVar[bool] = True
    in_paper: ClassVar[bool] = False
    default: ClassVar[bool] = False
    weights: ClassVar[str | None] = None
    heading: ClassVar[str | None] = None
    record_options: ClassVar[dict] = {}
    tradeoff_rank: ClassVar[int | None] = None
    value_range: ClassVar[tuple[float, float]] = UNBOUNDED
    rate: ClassVar[bool] = False

    @classmethod
    def table_heading(cls) -> str:
        return cls.heading or GROUP_HEADINGS[cls.group]

    @classmethod
    def options_record(cls, options) -> dict:
        """The options of this metric that change its value, for its record."""
        return dict(cls.record_options)

    @classmethod
    def build(cls, options, backbones: dict[str, Any]) -> MetricContract:
        """A fresh instance for one evaluation (``backbones`` by name, already made)."""
        return cls()

    def feed(self, batch: FeatureBatch) -> None:
        """Update from one batch's features (per-pair metrics)."""
        raise NotImplementedError(f"{type(self).__name__} does not say how it reads its backbones' features.")


class SetMetric(MetricContract):
    """A value of the whole set (FID, KID): the evaluator keeps feature ``feature`` of the first
    backbone for both sets and calls :meth:`set_value`; its interval resamples the pairs."""

    per_pair: ClassVar[bool] = False
    feature: ClassVar[str]
    min_pairs: ClassVar[int] = 2
    # Resampling with repeats narrows covariances and raises a Fréchet distance: such a metric's
    # interval is moved onto its point value (``bootstrap.recentred``), its spread kept.
    recentre_interval: ClassVar[bool] = False

    @classmethod
    def set_value(cls, features_o: torch.Tensor, features_c: torch.Tensor, warn: bool = True) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def resampled_values(cls, features_o: torch.Tensor, features_c: torch.Tensor, indices: torch.Tensor) -> np.ndarray:
        """The value on each resampled (paired) set, one row of ``indices`` each, for the interval."""
        return np.array([float(cls.set_value(features_o[row], features_c[row], warn=False)) for row in indices])


class PairMetric(MetricContract, Metric):
    """A metric with one value per (original, customized) pair; its aggregate is their mean.

    A pair whose value cannot be computed (ID without a face) holds NaN and is left out of the
    mean; ``count`` says how many pairs the mean covers.
    """

    is_differentiable = False
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def _append(self, values: torch.Tensor) -> None:
        self.values.append(values.detach().to(torch.float64).reshape(-1))

    def per_pair(self) -> torch.Tensor:
        """Every pair's value in update order (NaN where a pair was left out)."""
        if not self.values:
            return torch.zeros(0, dtype=torch.float64)
        return dim_zero_cat(self.values)

    def count(self) -> int:
        return int(torch.isfinite(self.per_pair()).sum())

    def compute(self) -> torch.Tensor:
        values = self.per_pair()
        kept = values[torch.isfinite(values)]
        if kept.numel() == 0:
            return torch.tensor(float("nan"), dtype=torch.float64)
        return kept.mean()


def cosine_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity in float64; a row that is NaN (no feature) gives NaN.

    Computed in float64 because embeddings are usually float16/32 and the comparison with
    reference implementations is at 1e-5; normalising first keeps a zero vector from
    producing a silent 0 (it gives NaN, which is reported as a missing value).
    """
    a = a.to(torch.float64)
    b = b.to(torch.float64)
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    return (a * b).sum(dim=-1)
