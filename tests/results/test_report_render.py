"""Rendered tables: a reviewed Markdown snapshot, LaTeX that compiles (or at least parses), escaping."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from spf_bench.results import tables
from spf_bench.results.runs import load_paper_reference, load_runs
from spf_bench.results.render import (
    escape_latex,
    escape_markdown,
    table_csv,
    table_html,
    table_json,
    table_latex,
    table_markdown,
)
from support.report_runs import MEANS, write_run, write_standard_runs

SNAPSHOTS = Path(__file__).parent / "snapshots"
NASTY = "x<b>|y_&%$#{}~^\\ `*[z]"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return load_runs(write_standard_runs(tmp_path_factory.mktemp("runs")))


@pytest.fixture(scope="module")
def nasty_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("nasty")
    write_run(root, "ours")
    frame_path = write_run(root, "ours", folder="nasty")
    summary = json.loads((frame_path / "summary.json").read_text())
    summary["identity"]["method"] = NASTY
    (frame_path / "summary.json").write_text(json.dumps(summary))
    return load_runs(root)


def _check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("SPF_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"snapshot {path} is missing; run with SPF_UPDATE_SNAPSHOTS=1 and review it"
    assert text == path.read_text(encoding="utf-8")


def test_markdown_matches_reviewed_snapshots(runs):
    _check_snapshot("tab1_with_paper.md", table_markdown(tables.paper_table(runs, "tab1", load_paper_reference())))
    _check_snapshot("leaderboard_by_clip_t.md", table_markdown(tables.leaderboard(runs, sort_by="CLIP-T"), with_ci=True))


def test_markdown_marks_the_right_cells(runs):
    lines = table_markdown(tables.paper_table(runs, "tab1")).splitlines()
    row = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in lines if line.startswith("| ")}
    assert row["Ours (w/o SFCM)"][1] == "**4.13**" and row["Ours"][1] == "<u>4.50</u>"
    assert row["LoRA"][6] == "**0.270**" and row["Naive fine-tuning"][6] == "0.240"


def check_tabular(tex: str) -> int:
    """Parse a booktabs tabular: balanced environment and braces, every row as wide as the spec."""
    assert tex.count(r"\begin{tabular}") == 1 and tex.count(r"\end{tabular}") == 1
    body = tex[tex.index(r"\begin{tabular}"):tex.index(r"\end{tabular}")]
    depth = 0
    for match in re.finditer(r"\\[{}]|[{}]", tex):
        if match.group() in "{}":
            depth += 1 if match.group() == "{" else -1
            assert depth >= 0, "a closing brace without its opening one"
    assert depth == 0, "unbalanced braces"
    spec = re.match(r"\\begin\{tabular\}\{([lrc|]+)\}", body).group(1)
    width = len(spec.replace("|", ""))
    lines = [line for line in body.splitlines()[1:] if line.strip()]
    assert lines[0] == r"\toprule" and tex.rstrip().splitlines()[-2] == r"\bottomrule"
    rows = 0
    for line in lines:
        if not line.endswith(r"\\"):
            assert re.fullmatch(r"(\\(toprule|midrule|bottomrule)|(\\cmidrule\(lr\)\{\d+-\d+\}\s*)+)", line.strip()), line
            continue
        cells = re.split(r"(?<!\\)&", line[:-2])
        spans = sum(int(m.group(1)) if (m := re.search(r"\\multicolumn\{(\d+)\}", c)) else 1 for c in cells)
        assert spans == width, f"{spans} columns instead of {width}: {line}"
        rows += 1
    return rows


def test_latex_is_a_balanced_booktabs_tabular(runs, nasty_runs):
    tex = table_latex(tables.paper_table(runs, "tab1", load_paper_reference()))
    assert check_tabular(tex) == 2 + 4 + 1 + 10  # group row, header, 4 measured, paper heading, 10 paper rows
    assert r"\textbf{4.13}" in tex and r"\underline{4.50}" in tex and r"FID $\downarrow$" in tex
    check_tabular(table_latex(tables.leaderboard(nasty_runs)))


def test_latex_compiles_where_a_latex_is_installed(runs, nasty_runs, tmp_path):
    latex = shutil.which("pdflatex") or shutil.which("lualatex") or shutil.which("xelatex")
    if latex is None:
        pytest.skip("no LaTeX (pdflatex, lualatex or xelatex) is installed (scripts/setup.sh installs one when run as root); "
                    "the tabular is checked by parsing instead")
    body = table_latex(tables.paper_table(runs, "tab1", load_paper_reference())) + table_latex(tables.leaderboard(nasty_runs))
    document = "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n" \
               "\\begin{document}\n\\resizebox{\\textwidth}{!}{%\n" + body.replace("\\end{tabular}\n\\begin", "\\end{tabular}}\n\n\\resizebox{\\textwidth}{!}{%\n\\begin") + "}\n\\end{document}\n"
    (tmp_path / "t.tex").write_text(document, encoding="utf-8")
    result = subprocess.run([latex, "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]


def _markdown_cells(line: str) -> list[str]:
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


def test_user_text_is_escaped_in_every_format(nasty_runs):
    board = tables.leaderboard(nasty_runs)
    md = table_markdown(board)
    header, _, *rows = md.split("\n\n")[0].splitlines()
    assert all(len(_markdown_cells(r)) == len(_markdown_cells(header)) for r in rows)
    assert escape_markdown(NASTY) in md and "<b>|" not in md
    html = table_html(board)
    assert NASTY not in html and "x&lt;b&gt;|y_&amp;" in html

    class Cells(HTMLParser):
        texts: list[str] = []

        def handle_data(self, data):
            self.texts.append(data)

    parser = Cells()
    parser.texts = []
    parser.feed(html)
    assert NASTY in parser.texts  # the browser shows the name exactly as typed
    tex = table_latex(board)
    assert escape_latex(NASTY) in tex and r"\textless{}b\textgreater{}|y\_\&\%\$\#\{\}" in tex


def test_csv_and_json_carry_values_intervals_and_marks(runs):
    table = tables.paper_table(runs, "tab4", load_paper_reference())
    frame = pd.read_csv(pd.io.common.StringIO(table_csv(table)))
    assert list(frame["source"]) == ["measured", "measured", "paper", "paper", "paper", "paper"]
    ours = frame[(frame["method"] == "ours") & (frame["source"] == "measured")].iloc[0]
    assert ours["CLIP-T"] == pytest.approx(MEANS["ours"][5]) and ours["CLIP-T ci_low"] < ours["CLIP-T"]
    assert ours["FID mark"] == "best"
    document = json.loads(table_json(table))
    assert [m["name"] for m in document["metrics"]][:2] == ["FID", "LPIPS"]
    assert document["metrics"][0]["higher_is_better"] is False
    paper = [r for r in document["rows"] if r["source"] == "paper"]
    assert all(v["mark"] == "" for r in paper for v in r["values"].values())
    assert document["rows"][1]["values"]["FID"]["ci_low"] is None  # no interval given: null, never NaN
