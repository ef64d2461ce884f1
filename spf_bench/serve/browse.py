"""The results browser's list: filter by category and method, sort by a metric or a difference.

Query parameters (all optional): ``category``, ``method`` (repeatable: the methods shown),
``metric`` (the metric whose per-pair values fill the columns), ``a`` and ``b`` (two methods
whose difference a - b gets a column), ``sort`` (``id``, a method name, or ``diff``) and
``order`` (``asc`` or ``desc``). Unknown values stop with one sentence naming them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from spf_bench.core.errors import SpfError
from spf_bench.metrics import registry
from spf_bench.metrics.base import PRESERVATION, RESPONSIVENESS
from spf_bench.serve.catalog import Catalog, arrow, higher_is_better


@dataclass
class ListView:
    category: str
    methods: list[str]
    metric: str
    a: str
    b: str
    sort: str
    order: str
    rows: list[dict]


def _one_of(value: str, allowed, what: str) -> str:
    if value not in allowed:
        shown = ", ".join(str(a) for a in allowed) or "none"
        raise SpfError(f"Unknown {what} '{value}'; choose one of {shown}.")
    return value


def _of_group(catalog: Catalog, group: str) -> list[str]:
    # Each metric's group comes from its own declaration (the metric registry); a column the
    # registry does not know (a plug-in no longer installed) belongs to no group.
    known = registry.metrics()
    return [m for m in catalog.metrics if m in known and known[m].group == group]


def default_metric(catalog: Catalog) -> str:
    responsive = _of_group(catalog, RESPONSIVENESS)
    return responsive[0] if responsive else (catalog.metrics[0] if catalog.metrics else "")


def list_view(catalog: Catalog, params) -> ListView:
    categories = sorted(set(catalog.rows["category"]))
    category = params.get("category", "")
    if category:
        _one_of(category, categories, "category")
    methods = [_one_of(m, catalog.methods, "method") for m in params.getlist("method")] or list(catalog.methods)
    metric = params.get("metric") or default_metric(catalog)
    if catalog.metrics:
        _one_of(metric, catalog.metrics, "metric")
    a, b = params.get("a", ""), params.get("b", "")
    for name in (a, b):
        if name:
            _one_of(name, catalog.methods, "method")
    sort = params.get("sort", "id")
    _one_of(sort, ["id", "diff", *catalog.methods], "sort key")
    if sort == "diff" and not (a and b):
        raise SpfError("Sorting by the difference needs both methods a and b.")
    order = _one_of(params.get("order", "asc"), ["asc", "desc"], "order")

    rows = []
    for record in catalog.rows.to_dict("records"):
        if category and record["category"] != category:
            continue
        values = {m: catalog.value(m, metric, record["id"]) for m in methods}
        diff = catalog.value(a, metric, record["id"]) - catalog.value(b, metric, record["id"]) if a and b else math.nan
        rows.append({**record, "values": values, "diff": diff})
    if sort == "id":
        rows.sort(key=lambda r: r["id"], reverse=order == "desc")
    else:
        def key(row):
            value = row["diff"] if sort == "diff" else catalog.value(sort, metric, row["id"])
            # a missing value (no face found) sorts last either way: it is not a worst case
            return (not math.isfinite(value), value if order == "asc" else -value if math.isfinite(value) else 0)
        rows.sort(key=key)
    return ListView(category, methods, metric, a, b, sort, order, rows)


def worst_case_links(catalog: Catalog) -> list[tuple[str, dict]]:
    """One-click queries for the usual worst cases of the method most likely under study."""
    focus = "ours" if "ours" in catalog.methods else catalog.methods[-1]
    reference = "base" if "base" in catalog.methods and focus != "base" else next(
        (m for m in catalog.methods if m != focus), "")
    links = []
    for metric in _of_group(catalog, RESPONSIVENESS):
        links.append((f"Lowest {metric} of {focus}", {"metric": metric, "sort": focus, "order": "asc"}))
    for metric in _of_group(catalog, PRESERVATION):
        if reference:
            worst = "asc" if higher_is_better(metric) else "desc"
            links.append((f"Largest {metric} {arrow(metric)} loss of {focus} vs {reference}",
                          {"metric": metric, "a": focus, "b": reference, "sort": "diff", "order": worst}))
    return links
