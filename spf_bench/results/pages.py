"""The report's two front pages, ``index.md`` and ``index.html``, from a list of blocks.

A block is a table, a plain data frame, a figure or a paragraph, with links to the files it was
written to. Both pages are rendered from the same blocks so they never disagree. The HTML page is
self-contained: its style is inline, it loads no script and no remote resource, and it refers
only to files of the report folder (relative links, checked to exist before they are written).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from spf_bench.core.errors import SpfError
from spf_bench.results.render import escape_html, escape_markdown, table_html, table_markdown


@dataclass
class Block:
    title: str
    table: object | None = None  # a MetricTable
    frame: pd.DataFrame | None = None
    image: str | None = None  # path relative to the report folder
    text: str = ""
    links: list[str] = field(default_factory=list)


@dataclass
class Page:
    title: str
    banner: list[str]  # shown first, e.g. "numbers come from untrained tiny models"
    facts: list[str]
    blocks: list[Block]


def _href(relative: str) -> str:
    """A relative URL for a report file: each path segment percent-encoded, never absolute."""
    return "/".join(quote(part) for part in Path(relative).parts)


def check_links(page: Page, folder: Path) -> None:
    for block in page.blocks:
        for relative in [*block.links, *([block.image] if block.image else [])]:
            if not (folder / relative).is_file():
                raise SpfError(f"The report would link to {relative}, which was not written.")


def _frame_value(value) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        value += 0.0  # -0.0 becomes 0.0, so a zero never prints with a sign
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def frame_markdown(frame: pd.DataFrame) -> str:
    headers = [escape_markdown(c) for c in frame.columns]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    for record in frame.itertuples(index=False):
        lines.append("| " + " | ".join(escape_markdown(_frame_value(v)) for v in record) + " |")
    return "\n".join(lines) + "\n"


def frame_html(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{escape_html(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{escape_html(_frame_value(v))}</td>" for v in record) + "</tr>"
                   for record in frame.itertuples(index=False))
    return f'<div class="scroll"><table class="frame"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>\n'


def page_markdown(page: Page) -> str:
    out = [f"# {escape_markdown(page.title)}", ""]
    out += [f"> **{escape_markdown(line)}**" for line in page.banner]
    if page.banner:
        out.append("")
    out += [f"- {escape_markdown(fact)}" for fact in page.facts]
    out.append("")
    for block in page.blocks:
        out += [f"## {escape_markdown(block.title)}", ""]
        if block.text:
            out += [escape_markdown(block.text), ""]
        if block.table is not None:
            out.append(table_markdown(block.table))
        if block.frame is not None and not block.frame.empty:
            out.append(frame_markdown(block.frame))
        if block.image:
            out += [f"![{escape_markdown(block.title)}]({_href(block.image)})", ""]
        if block.links:
            out += ["Files: " + ", ".join(f"[{escape_markdown(Path(link).name)}]({_href(link)})" for link in block.links), ""]
    return "\n".join(out).rstrip() + "\n"


_STYLE = """
body { font-family: DejaVu Sans, Helvetica, Arial, sans-serif; margin: 2em auto; padding: 0 1.5em; max-width: 1500px; color: #222; }
.banner { background: #fff3cd; border: 1px solid #e0b000; padding: .8em 1em; font-weight: bold; }
table { border-collapse: collapse; margin: .6em 0; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
td:first-child, th:first-child, td.info { text-align: left; }
.scroll { overflow-x: auto; }
th.group { text-align: center; border-bottom: 1px solid #888; }
caption { text-align: left; font-weight: bold; padding-bottom: .3em; }
tr.paper td { font-style: italic; color: #555; background: #f4f4f4; }
.ci { color: #777; font-size: 11px; }
.note { color: #555; font-size: 12px; margin: .2em 0; }
img { max-width: 100%; box-sizing: border-box; border: 1px solid #ccc; }
"""


def page_html(page: Page) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{escape_html(page.title)}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>",
           f"<h1>{escape_html(page.title)}</h1>"]
    out += [f'<p class="banner">{escape_html(line)}</p>' for line in page.banner]
    if page.facts:
        out.append("<ul>" + "".join(f"<li>{escape_html(f)}</li>" for f in page.facts) + "</ul>")
    for block in page.blocks:
        out.append(f"<section><h2>{escape_html(block.title)}</h2>")
        if block.text:
            out.append(f"<p>{escape_html(block.text)}</p>")
        if block.table is not None:
            out.append(table_html(block.table, caption=False))
        if block.frame is not None and not block.frame.empty:
            out.append(frame_html(block.frame))
        if block.image:
            out.append(f'<p><img src="{escape_html(_href(block.image))}" alt="{escape_html(block.title)}"></p>')
        if block.links:
            links = ", ".join(f'<a href="{escape_html(_href(link))}">{escape_html(Path(link).name)}</a>' for link in block.links)
            out.append(f'<p class="note">Files: {links}</p>')
        out.append("</section>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
