"""The tables' metric columns, read off the metric classes (:mod:`spf_bench.metrics.registry`).

A column carries what a table needs of its metric: name, heading group, direction, decimals and
whether it is a per-pair mean or a value of the whole set. Columns are ordered by group
(Preservation, Responsiveness, Overall, then the synthetic world's own group and any other a
plug-in declares), and within a group in the registry's order. The paper's eight always have
a column; any other metric only where a run scored it, so a table never shows a column that
no run could fill.
"""

from __future__ import annotations

from dataclasses import dataclass

from spf_bench.metrics import registry
from spf_bench.metrics.base import GROUP_HEADINGS, PRESERVATION
from spf_bench.metrics.world import WORLD_HEADING

WORLD_GROUP = WORLD_HEADING
GROUPS = (*GROUP_HEADINGS.values(), WORLD_GROUP)


@dataclass(frozen=True)
class Metric:
    name: str
    group: str
    higher_is_better: bool
    decimals: int
    per_pair: bool = True  # False: a value of the whole set (FID), never averaged over pairs
    preservation: bool = False  # scored by the base-text reconstruction analysis
    in_paper: bool = False

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    @property
    def header(self) -> str:
        return f"{self.name} {self.arrow}"


def _column(cls) -> Metric:
    return Metric(cls.name, cls.table_heading(), bool(cls.higher_is_better), cls.decimals, cls.per_pair,
                  cls.group == PRESERVATION, cls.in_paper)


def all_columns() -> tuple[Metric, ...]:
    """Every metric's column, in table order."""
    columns = [_column(cls) for cls in registry.metrics().values()]
    order = {group: i for i, group in enumerate(GROUPS)}
    return tuple(sorted(columns, key=lambda m: order.get(m.group, len(order))))  # sorted() is stable


def column(name: str) -> Metric:
    return _column(registry.metric(name))


def known(name: str) -> bool:
    return name in registry.metrics()


def paper_columns() -> tuple[Metric, ...]:
    """The paper's eight, which every paper table and the leaderboard show."""
    return tuple(m for m in all_columns() if m.in_paper)


def per_pair_columns() -> tuple[Metric, ...]:
    return tuple(m for m in all_columns() if m.per_pair)


def tradeoff_axes() -> tuple[list[str], list[str]]:
    """The trade-off picture's candidate axes, most preferred first, as the metrics rank themselves:
    x a preservation metric, y a responsiveness one; the first that every method has is used."""
    ranked = sorted((cls.tradeoff_rank, name, cls.group) for name, cls in registry.metrics().items()
                    if cls.tradeoff_rank is not None)
    return ([n for _, n, g in ranked if g == registry.PRESERVATION], [n for _, n, g in ranked if g == registry.RESPONSIVENESS])


def columns_with_values(filled) -> tuple[Metric, ...]:
    """The paper's columns, then every other column for which ``filled(name)`` is true."""
    return tuple(m for m in all_columns() if m.in_paper or filled(m.name))
