"""A table as data: :class:`MetricTable` (rows x metric columns, each value with its 95%
interval and its rank mark) and its rows and cells; :mod:`.tables` fills them from runs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from spf_bench.core.errors import SpfError
from spf_bench.results.columns import Metric


@dataclass(frozen=True)
class Cell:
    value: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    n: int = 0


EMPTY = Cell(math.nan)


@dataclass
class TableRow:
    method: str
    label: str
    cells: dict[str, Cell]
    section: str = ""
    source: str = "measured"  # or "paper": a reported reference, never ranked
    identity: dict = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)


@dataclass
class MetricTable:
    """Rows x metrics with intervals and rank marks; ``reference`` rows are shown, never ranked."""

    key: str
    title: str
    metrics: tuple[Metric, ...]
    rows: list[TableRow]
    reference: list[TableRow] = field(default_factory=list)
    info_columns: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    rank_within_sections: bool = False
    marks: dict[tuple[int, str], str] = field(default_factory=dict, init=False)  # (row index, metric) -> best|second

    def __post_init__(self) -> None:
        self.rerank()

    def rerank(self) -> None:
        self.marks = {}
        if self.rank_within_sections:
            sections: dict[str, list[int]] = {}
            for i, row in enumerate(self.rows):
                sections.setdefault(row.section, []).append(i)
            groups = list(sections.values())
        else:
            groups = [list(range(len(self.rows)))]
        for indices in groups:
            for metric in self.metrics:
                self.marks.update(_rank_marks(self.rows, indices, metric))

    def mark(self, row_index: int, metric: str) -> str:
        return self.marks.get((row_index, metric), "")

    def _frame(self, rows: list[TableRow], attr: str) -> pd.DataFrame:
        columns = pd.MultiIndex.from_tuples([(m.group, m.header) for m in self.metrics], names=["group", "metric"])
        data = [[getattr(r.cells.get(m.name, EMPTY), attr) for m in self.metrics] for r in rows]
        index = pd.Index([r.label for r in rows], name="Method")
        return pd.DataFrame(data, index=index, columns=columns, dtype=float)

    @property
    def values(self) -> pd.DataFrame:
        return self._frame(self.rows, "value")

    @property
    def ci_low(self) -> pd.DataFrame:
        return self._frame(self.rows, "ci_low")

    @property
    def ci_high(self) -> pd.DataFrame:
        return self._frame(self.rows, "ci_high")

    @property
    def reference_values(self) -> pd.DataFrame:
        return self._frame(self.reference, "value")

    @property
    def mark_frame(self) -> pd.DataFrame:
        frame = self.values.astype(object)
        for i in range(len(self.rows)):
            for j, metric in enumerate(self.metrics):
                frame.iat[i, j] = self.mark(i, metric.name)
        return frame

    def sorted_by(self, metric: str) -> MetricTable:
        """A copy with rows best-first by ``metric`` (its direction respected), gaps last."""
        by_name = {m.name: m for m in self.metrics}
        if metric not in by_name:
            known = ", ".join(by_name)
            raise SpfError(f"Cannot sort by '{metric}': the metrics are {known}.")
        sign = -1.0 if by_name[metric].higher_is_better else 1.0

        def key(row: TableRow) -> tuple:
            value = row.cells.get(metric, EMPTY).value
            return (not math.isfinite(value), sign * value if math.isfinite(value) else 0.0)

        return MetricTable(self.key, self.title, self.metrics, sorted(self.rows, key=key), list(self.reference),
                           self.info_columns, list(self.notes), self.rank_within_sections)


def _rank_marks(rows: list[TableRow], indices: list[int], metric: Metric) -> dict[tuple[int, str], str]:
    """Best and second-best among measured rows, compared as displayed (rounded), ties shared.

    Comparing rounded values keeps the marks consistent with what a reader sees; a sole row is
    not marked because "best of one" says nothing, and with two rows the second is also the
    worst, so only the best is marked.
    """
    shown = {}
    for i in indices:
        value = rows[i].cells.get(metric.name, EMPTY).value
        if math.isfinite(value):
            shown[i] = round(value, metric.decimals)
    distinct = sorted(set(shown.values()), reverse=metric.higher_is_better)
    if len(shown) < 2:
        return {}
    marks = {}
    for i, value in shown.items():
        if value == distinct[0]:
            marks[(i, metric.name)] = "best"
        elif len(shown) > 2 and len(distinct) > 1 and value == distinct[1]:
            marks[(i, metric.name)] = "second"
    return marks

