"""Every metric the suite knows, in one order: the built-in ones, then plug-ins from outside.

A plug-in is a metric class (the contract of :class:`spf_bench.metrics.base.MetricContract`)
that another distribution registers under the entry point group ``spf_bench.metrics``::

    [project.entry-points."spf_bench.metrics"]
    sharpness = "my_metrics.sharpness:Sharpness"

It then appears in ``spf-bench run`` / ``evaluate`` (and their ``--help``), ``per_pair.csv``,
``summary.json``, the leaderboard and the report with no change to the suite
(``docs/extending.md``). Entry points are read once per process; :func:`refresh` reads them
again (after installing one at run time, as the tests do).
"""

from __future__ import annotations

import functools
from importlib import metadata

from spf_bench.core.errors import SpfError
from spf_bench.metrics.backbones import BACKBONES
from spf_bench.metrics.base import GROUPS, PRESERVATION, RESPONSIVENESS, MetricContract, SetMetric  # noqa: F401
from spf_bench.metrics.clip_image import ClipImageSimilarity
from spf_bench.metrics.clip_text import ClipTextAlignment
from spf_bench.metrics.fd_clip import FrechetClipDistance
from spf_bench.metrics.fid import FrechetInceptionDistance
from spf_bench.metrics.hps import HpsV2Score
from spf_bench.metrics.identity import IdentitySimilarity
from spf_bench.metrics.kid import KernelInceptionDistance
from spf_bench.metrics.lpips_distance import LearnedPerceptualSimilarity
from spf_bench.metrics.mps import MpsScore
from spf_bench.metrics.seg_cons import SegmentationConsistency
from spf_bench.metrics.world import AttributePreservation, IdentityPreservation, TargetAccuracy

ENTRY_POINT_GROUP = "spf_bench.metrics"
# The order of tables' columns within a group, of summary.json and of --help: the paper's
# preservation metrics, then the two set-level additions beside FID, then the rest.
BUILT_IN = (FrechetInceptionDistance, LearnedPerceptualSimilarity, IdentitySimilarity, ClipImageSimilarity,
            SegmentationConsistency, KernelInceptionDistance, FrechetClipDistance, ClipTextAlignment, HpsV2Score,
            MpsScore, TargetAccuracy, AttributePreservation, IdentityPreservation)


def _check(cls, origin: str) -> None:
    """Stop with one sentence when a metric class misses a part of the contract."""
    if not (isinstance(cls, type) and issubclass(cls, MetricContract)):
        raise SpfError(f"The metric {origin} is not a class following spf_bench.metrics.base.MetricContract "
                       "(subclass PairMetric or SetMetric).")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name or "," in name:
        raise SpfError(f"The metric {origin} has no usable name (a non-empty string without commas).")
    if getattr(cls, "group", None) not in GROUPS:
        raise SpfError(f"The metric {origin} ('{name}') has group {getattr(cls, 'group', None)!r}; "
                       f"it must be one of {', '.join(GROUPS)}.")
    if not isinstance(getattr(cls, "higher_is_better", None), bool):
        raise SpfError(f"The metric {origin} ('{name}') does not say whether higher is better (higher_is_better).")
    unknown = [b for b in cls.backbones if b not in BACKBONES]
    if not cls.backbones or unknown:
        raise SpfError(f"The metric {origin} ('{name}') names backbone(s) {', '.join(unknown) or 'none'}; "
                       f"the backbones are {', '.join(BACKBONES)}.")
    if cls.per_pair and cls.feed is MetricContract.feed:
        raise SpfError(f"The metric {origin} ('{name}') does not say how it reads its backbones' features (feed).")
    if not cls.per_pair and not (issubclass(cls, SetMetric) and isinstance(getattr(cls, "feature", None), str)):
        raise SpfError(f"The metric {origin} ('{name}') is per set but is no SetMetric with a 'feature' to keep.")


def _plug_ins() -> list[type]:
    found = []
    for entry in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        origin = f"plug-in '{entry.name}' ({entry.value})"
        try:
            cls = entry.load()
        except Exception as error:  # a broken plug-in is named, not a traceback from deep inside
            raise SpfError(f"The metric {origin} could not be loaded: {error}.") from error
        _check(cls, origin)
        found.append(cls)
    return found


@functools.lru_cache(maxsize=1)
def _registry() -> dict[str, type]:
    metrics: dict[str, type] = {}
    for cls in (*BUILT_IN, *_plug_ins()):
        if cls.name in metrics:
            raise SpfError(f"Two metrics are named '{cls.name}' ({metrics[cls.name].__module__}."
                           f"{metrics[cls.name].__name__} and {cls.__module__}.{cls.__name__}); rename the plug-in.")
        metrics[cls.name] = cls
    return metrics


def refresh() -> None:
    """Read the entry points again (a plug-in installed while the process runs)."""
    _registry.cache_clear()


def metrics() -> dict[str, type]:
    """Every metric class by name, in the suite's order."""
    return dict(_registry())


def metric(name: str) -> type:
    registry = _registry()
    if name not in registry:
        raise SpfError(f"Unknown metric '{name}'; the metrics are: {', '.join(registry)}.")
    return registry[name]


def default_metrics() -> tuple[str, ...]:
    """What is scored when no metric is named (a metric of one weight source joins on its own)."""
    return tuple(name for name, cls in _registry().items() if cls.default and cls.weights is None)


def paper_metrics() -> tuple[str, ...]:
    """The paper's eight: tables and ``per_pair.csv`` always have their columns."""
    return tuple(name for name, cls in _registry().items() if cls.in_paper)


def of_group(names, group: str) -> tuple[str, ...]:
    """Those of ``names`` in ``group``, in the given order."""
    return tuple(n for n in names if metric(n).group == group)


def backbone_of(name: str) -> str:
    """The backbone whose identity a metric's record carries (its first)."""
    return metric(name).backbones[0]


def resolve(chosen: tuple[str, ...], weights: str, auto: bool = True) -> tuple[str, ...]:
    """The metrics a run scores: ``chosen`` (checked) plus, with ``auto``, the metrics of these
    weights alone (the synthetic world's) that share a group with a chosen one.

    (choice) Joining by group lets the default metrics bring all three world metrics and the
    preservation-only reconstruction analysis bring Attr-Pres and ID-Pres but not Target-Acc,
    which means nothing for an image drawn without the target. Naming such a metric in
    ``chosen`` turns the automatic choice off: exactly ``chosen`` is scored.
    """
    registry = _registry()
    unknown = [m for m in chosen if m not in registry]
    if unknown:
        restricted = [n for n, c in registry.items() if c.weights]
        raise SpfError(f"Unknown metric(s) {', '.join(unknown)}; known metrics are: "
                       f"{', '.join(n for n in registry if n not in restricted)}"
                       + "".join(f" and, under --weights {w}, {', '.join(n for n in restricted if registry[n].weights == w)}"
                                 for w in dict.fromkeys(registry[n].weights for n in restricted)) + ".")
    misplaced = [m for m in chosen if registry[m].weights not in (None, weights)]
    if misplaced:
        need = registry[misplaced[0]].weights
        raise SpfError(f"{', '.join(misplaced)} can be scored only with --weights {need}; score with --weights {need} "
                       f"or leave {'it' if len(misplaced) == 1 else 'them'} out of the metrics.")
    if any(registry[m].weights for m in chosen) or not auto:
        return tuple(chosen)
    groups = {registry[m].group for m in chosen}
    return tuple(chosen) + tuple(n for n, c in registry.items() if c.weights == weights and c.group in groups)


def help_text() -> str:
    """The metrics for a command's ``--help``: the default ones, then the others."""
    registry = _registry()
    defaults = default_metrics()
    others = {w: [n for n, c in registry.items() if c.weights == w] for w in {c.weights for c in registry.values()} if w}
    opt_in = [n for n, c in registry.items() if not c.default and not c.weights]
    text = f"default: {', '.join(defaults)}"
    if opt_in:
        text += f"; also: {', '.join(opt_in)}"
    for weights, names in sorted(others.items()):
        text += f"; under --weights {weights} (added automatically): {', '.join(names)}"
    return text
