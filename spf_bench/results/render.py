"""Render a :class:`~spf_bench.results.tables.MetricTable` as Markdown, LaTeX (booktabs), HTML, CSV or JSON.

Every piece of user text (method names come from folder names, labels from files) goes through
the escaper of its target format, so a name such as ``a|b_<c>`` cannot break a table or inject
markup. Best values are bold and second-best underlined; reference rows are never marked. This
module only reads a table's attributes, so it does not import :mod:`spf_bench.results.tables`.
"""

from __future__ import annotations

import html
import json
import math

import pandas as pd

NAN_TEXT = "–"
_MD_SPECIAL = "\\`*_[]<>|#~!$"  # "$" too: GitHub reads $...$ as a formula
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}",
}
_LATEX_ARROWS = {"↓": r"$\downarrow$", "↑": r"$\uparrow$"}


def escape_markdown(text: str) -> str:
    """Backslash-escape Markdown punctuation; newlines become spaces so a cell stays one line."""
    out = "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in str(text))
    return out.replace("\r", " ").replace("\n", " ")


def escape_latex(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, _LATEX_ARROWS.get(ch, ch)) for ch in str(text))


def escape_html(text: str) -> str:
    return html.escape(str(text), quote=True)


def fixed(value: float, decimals: int) -> str:
    """``value`` to ``decimals`` places; one that rounds to zero prints as zero, never "-0.0000"
    (a KID interval's lower end of -0.00003 is a zero at the table's precision, not a negative)."""
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def format_value(value: float, decimals: int) -> str:
    return fixed(value, decimals) if math.isfinite(value) else NAN_TEXT


def format_interval(cell, decimals: int) -> str:
    if not (math.isfinite(cell.ci_low) and math.isfinite(cell.ci_high)):
        return ""
    return f"[{fixed(cell.ci_low, decimals)}, {fixed(cell.ci_high, decimals)}]"


class _Missing:
    """Stands for a metric a row has no value for (printed as a dash, never as 0)."""

    value = ci_low = ci_high = math.nan
    n = 0


def _cell(row, metric):
    return row.cells.get(metric.name) or _Missing


def _groups(metrics) -> list[tuple[str, int]]:
    """Consecutive metrics of one group, as (group, count): the spans of the group header."""
    spans: list[tuple[str, int]] = []
    for metric in metrics:
        if spans and spans[-1][0] == metric.group:
            spans[-1] = (metric.group, spans[-1][1] + 1)
        else:
            spans.append((metric.group, 1))
    return spans


def _legend(table) -> list[str]:
    lines = ["Bold: best; underlined: second best (measured rows only; with two rows only the best is marked). "
             "↓ lower is better, ↑ higher is better."]
    if table.reference:
        lines.append("Rows labelled 'Paper (reported)' are the numbers printed in the SPF-Portrait paper, "
                     "shown for reference; they were not measured here and are not ranked.")
    return lines + list(table.notes)


# ---------------------------------------------------------------- Markdown

def _md_value(table, index, row, metric, with_ci: bool) -> str:
    cell = _cell(row, metric)
    text = format_value(cell.value, metric.decimals)
    mark = table.mark(index, metric.name) if index is not None else ""
    if mark == "best":
        text = f"**{text}**"
    elif mark == "second":
        text = f"<u>{text}</u>"  # Markdown has no underline; <u> is what GitHub and most viewers render
    if with_ci and (interval := format_interval(cell, metric.decimals)):
        text = f"{text} {interval}"
    return text


def table_markdown(table, with_ci: bool = False) -> str:
    headers = ["Method", *table.info_columns]
    seen_groups: set[str] = set()
    for metric in table.metrics:
        # Markdown cannot span columns, so the group is named on its first metric's header.
        prefix = "" if metric.group in seen_groups else f"{metric.group}: "
        seen_groups.add(metric.group)
        headers.append(prefix + metric.header)
    align = ["---"] * (1 + len(table.info_columns)) + ["---:"] * len(table.metrics)
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    for index, row in enumerate(table.rows):
        cells = [escape_markdown(row.label), *(escape_markdown(row.info.get(c, "")) for c in table.info_columns)]
        cells += [_md_value(table, index, row, m, with_ci) for m in table.metrics]
        lines.append("| " + " | ".join(cells) + " |")
    for row in table.reference:
        cells = [f"*{escape_markdown(row.label)}*", *([""] * len(table.info_columns))]
        cells += [_md_value(table, None, row, m, False) for m in table.metrics]
        lines.append("| " + " | ".join(cells) + " |")
    if not table.rows and not table.reference:
        lines.append("| *no method of this table was run* |" + " |" * (len(headers) - 1))
    return "\n".join(lines) + "\n\n" + "\n".join(f"{escape_markdown(line)}  " for line in _legend(table)).rstrip() + "\n"


# ---------------------------------------------------------------- LaTeX

def _latex_value(table, index, row, metric) -> str:
    text = format_value(_cell(row, metric).value, metric.decimals).replace(NAN_TEXT, "--")
    mark = table.mark(index, metric.name) if index is not None else ""
    if mark == "best":
        return rf"\textbf{{{text}}}"
    if mark == "second":
        return rf"\underline{{{text}}}"
    return text


def table_latex(table) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``), with the title as a comment."""
    lead = 1 + len(table.info_columns)
    width = lead + len(table.metrics)
    spec = "l" * lead + "".join("r" * count for _, count in _groups(table.metrics))
    out = [f"% {table.title}".replace("\n", " "), rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    group_cells, rules, column = [""] * lead, [], lead + 1
    for group, count in _groups(table.metrics):
        group_cells.append(rf"\multicolumn{{{count}}}{{c}}{{{escape_latex(group)}}}")
        rules.append(rf"\cmidrule(lr){{{column}-{column + count - 1}}}")
        column += count
    out.append(" & ".join(group_cells) + r" \\")
    out.append(" ".join(rules))
    header = ["Method", *table.info_columns, *(m.header for m in table.metrics)]
    out.append(" & ".join(escape_latex(h) for h in header) + r" \\")
    out.append(r"\midrule")
    previous = None
    for index, row in enumerate(table.rows):
        if previous is not None and row.section != previous:
            out.append(r"\midrule")
        previous = row.section
        cells = [escape_latex(row.label), *(escape_latex(row.info.get(c, "")) for c in table.info_columns)]
        out.append(" & ".join(cells + [_latex_value(table, index, row, m) for m in table.metrics]) + r" \\")
    if table.reference:
        out.append(r"\midrule")
        out.append(rf"\multicolumn{{{width}}}{{l}}{{\textit{{Reported in the paper (not measured, not ranked)}}}} \\")
        for row in table.reference:
            cells = [rf"\textit{{{escape_latex(row.label)}}}", *([""] * len(table.info_columns))]
            out.append(" & ".join(cells + [_latex_value(table, None, row, m) for m in table.metrics]) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- HTML

def _html_value(table, index, row, metric, with_ci: bool) -> str:
    cell = _cell(row, metric)
    text = escape_html(format_value(cell.value, metric.decimals))
    mark = table.mark(index, metric.name) if index is not None else ""
    if mark == "best":
        text = f"<b>{text}</b>"
    elif mark == "second":
        text = f"<u>{text}</u>"
    interval = format_interval(cell, metric.decimals)
    title = f' title="95% CI {escape_html(interval)}, n={cell.n}"' if interval else ""
    if with_ci and interval:
        text += f'<br><span class="ci">{escape_html(interval)}</span>'
    return f"<td{title}>{text}</td>"


def table_html(table, with_ci: bool = True, caption: bool = True) -> str:
    lead = 1 + len(table.info_columns)
    # The wrapper scrolls a wide table sideways instead of widening the whole page.
    out = [f'<div class="scroll"><table class="metrics" id="{escape_html(table.key)}">']
    if caption:  # a page that already heads the table with its title asks for none
        out.append(f"<caption>{escape_html(table.title)}</caption>")
    out.append("<thead>")
    out.append("<tr>" + f'<th colspan="{lead}"></th>' + "".join(
        f'<th colspan="{count}" class="group">{escape_html(group)}</th>' for group, count in _groups(table.metrics)) + "</tr>")
    out.append("<tr>" + "".join(f"<th>{escape_html(h)}</th>" for h in ["Method", *table.info_columns])
               + "".join(f"<th>{escape_html(m.header)}</th>" for m in table.metrics) + "</tr>")
    out.append("</thead>")
    out.append("<tbody>")
    for index, row in enumerate(table.rows):
        cells = "".join(f'<td class="info">{escape_html(v)}</td>' for v in [row.label, *(row.info.get(c, "") for c in table.info_columns)])
        out.append(f"<tr>{cells}" + "".join(_html_value(table, index, row, m, with_ci) for m in table.metrics) + "</tr>")
    for row in table.reference:
        cells = f'<td class="info">{escape_html(row.label)}</td>' + "<td></td>" * len(table.info_columns)
        out.append(f'<tr class="paper">{cells}' + "".join(_html_value(table, None, row, m, False) for m in table.metrics) + "</tr>")
    out.append("</tbody></table></div>")
    out += [f'<p class="note">{escape_html(line)}</p>' for line in _legend(table)]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- CSV and JSON

def _json_number(value: float):
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def table_records(table) -> list[dict]:
    """One flat record per row (measured, then reference), with every interval: the CSV's rows."""
    records = []
    for index, row in enumerate([*table.rows, *table.reference]):
        measured = index < len(table.rows)
        record = {"method": row.method, "label": row.label, "source": row.source, "section": row.section}
        record.update({k: v for k, v in row.identity.items() if k not in record})
        record.update(row.info)
        for metric in table.metrics:
            cell = _cell(row, metric)
            record[metric.name] = cell.value
            record[f"{metric.name} ci_low"] = cell.ci_low
            record[f"{metric.name} ci_high"] = cell.ci_high
            record[f"{metric.name} n"] = cell.n
            record[f"{metric.name} mark"] = table.mark(index, metric.name) if measured else ""
        records.append(record)
    return records


def table_csv(table) -> str:
    records = table_records(table)
    if not records:
        columns = ["method", "label", "source", "section", *table.info_columns, *(m.name for m in table.metrics)]
        return pd.DataFrame(columns=columns).to_csv(index=False)
    return pd.DataFrame.from_records(records).to_csv(index=False)


def table_json(table) -> str:
    rows = []
    for index, row in enumerate([*table.rows, *table.reference]):
        measured = index < len(table.rows)
        values = {}
        for metric in table.metrics:
            cell = _cell(row, metric)
            values[metric.name] = {"value": _json_number(cell.value), "ci_low": _json_number(cell.ci_low),
                                   "ci_high": _json_number(cell.ci_high), "n": cell.n,
                                   "mark": table.mark(index, metric.name) if measured else ""}
        identity = {k: (_json_number(v) if isinstance(v, float) else v) for k, v in row.identity.items()}
        rows.append({"method": row.method, "label": row.label, "source": row.source, "section": row.section,
                     "identity": identity, "info": dict(row.info), "values": values})
    document = {
        "key": table.key, "title": table.title, "notes": list(table.notes),
        "metrics": [{"name": m.name, "group": m.group, "higher_is_better": m.higher_is_better} for m in table.metrics],
        "rows": rows,
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
