"""The synthetic world's three exact metrics, in the shape of the suite's other metrics.

Only the ``synth`` weights have a world whose every attribute is known, so only they score:
- Target-Acc ↑: the attribute oracle reads in C every value the target caption asks for;
- Attr-Pres ↑: the share of the attributes the target leaves alone that the oracle reads
  the same in O and C (semantic pollution lowers it);
- ID-Pres ↑: cosine of the world's identity embeddings of O and C. Under ``synth`` the suite's
  ``face`` backbone *is* the world's recogniser, so it reuses the face features and the ID
  metric's rule (a pair without a face in both images is left out and counted as not found);
  it therefore equals ID on the same run, and is listed beside the world's two others so the
  exact metrics read as one group.

The per-pair math lives in :mod:`spf_bench.world.world_metrics`; here it is wrapped as
:class:`~spf_bench.metrics.base.PairMetric` subclasses fed with backbone features (the
``oracle`` backbone's value indices, the ``face`` backbone's embeddings).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from spf_bench.core.errors import SpfError
from spf_bench.metrics.base import PRESERVATION, RESPONSIVENESS, UNIT, PairMetric
from spf_bench.metrics.identity import IdentitySimilarity

WORLD_WEIGHTS = "synth"
# (choice) The world's metrics get a table group of their own after the paper's three: they
# read ground truth rather than a proxy, and the paper's columns keep their places.
WORLD_HEADING = "Synthetic world (exact)"


class _WorldMetric:
    """What the world's three share: scored only on its weights, shown under their own heading."""

    weights: ClassVar[str | None] = WORLD_WEIGHTS
    heading: ClassVar[str | None] = WORLD_HEADING
    in_paper: ClassVar[bool] = False
    default: ClassVar[bool] = False  # joins chosen metrics of its group on its weights instead
    tradeoff_rank: ClassVar[int | None] = None


class _OracleMetric(_WorldMetric, PairMetric):
    """A metric of the oracle's value indices of O and C and the pair's target caption."""

    backbones: ClassVar[tuple[str, ...]] = ("oracle",)
    higher_is_better = True
    key: ClassVar[str]  # the value of world_metrics.pair_scores this metric keeps
    reads_target_caption: ClassVar[bool] = True  # the evaluator checks the captions before scoring
    value_range: ClassVar[tuple[float, float]] = UNIT  # shares of attributes

    def update(self, labels_o: torch.Tensor, labels_c: torch.Tensor, target_captions: list[str]) -> None:
        from spf_bench.world.world_metrics import pair_scores

        o, c = np.asarray(labels_o), np.asarray(labels_c)
        values = [pair_scores(o[i], c[i], caption)[self.key] for i, caption in enumerate(target_captions)]
        self._append(torch.tensor(values, dtype=torch.float64))

    def feed(self, batch) -> None:
        self.update(*batch.stacked("oracle", "labels"), [p.target_caption for p in batch.pairs])


class TargetAccuracy(_OracleMetric):
    name: ClassVar[str] = "Target-Acc"
    group: ClassVar[str] = RESPONSIVENESS
    key: ClassVar[str] = "target_accuracy"
    # A target asking for one attribute makes each pair a hit or a miss, a rate with a Wilson
    # interval; a run where some target asks for more (a share per pair) gets the bootstrap one.
    rate: ClassVar[bool] = True
    record_options: ClassVar[dict] = {"judge": "attribute oracle, argmax per attribute",
                                      "asked": "parse_caption(target caption, complete=False)"}


class AttributePreservation(_OracleMetric):
    name: ClassVar[str] = "Attr-Pres"
    group: ClassVar[str] = PRESERVATION
    key: ClassVar[str] = "attribute_preservation"
    record_options: ClassVar[dict] = {"judge": "attribute oracle, argmax per attribute",
                                      "kept": "every attribute the target caption does not name"}


class IdentityPreservation(_WorldMetric, IdentitySimilarity):
    name: ClassVar[str] = "ID-Pres"
    record_options: ClassVar[dict] = {"embedder": "the synthetic world's identity embedder (the face backbone under synth)"}


WORLD_METRICS = {cls.name: cls for cls in (TargetAccuracy, AttributePreservation, IdentityPreservation)}
WORLD_METRIC_ORDER = tuple(WORLD_METRICS)
ORACLE_METRICS = tuple(name for name, cls in WORLD_METRICS.items() if issubclass(cls, _OracleMetric))


def check_target_captions(pairs, metrics: tuple[str, ...]) -> None:
    """Stop before scoring when a target caption is not one of the world's (the oracle metrics parse it)."""
    if not any(m in ORACLE_METRICS for m in metrics):
        return
    from spf_bench.world.world_metrics import target_attributes

    for pair in pairs:
        try:
            target_attributes(pair.target_caption)
        except SpfError:
            raise SpfError(f"The target caption '{pair.target_caption}' of triple {pair.id} names no attribute of the "
                           f"synthetic world, so {' and '.join(ORACLE_METRICS)} cannot read it; use a triple set "
                           "composed from the world's captions, or score without the world's metrics "
                           "(--no-world-metrics).") from None
