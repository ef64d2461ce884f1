"""``spf-bench report``: the folder it writes, its front pages, and how Chromium renders them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest

from spf_bench.cli import main
from support.report_runs import CATEGORIES, write_run, write_standard_runs, write_triples

NASTY = "odd<i>|name_&$\\q$"  # markup, a table pipe, and a formula matplotlib cannot parse


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    runs = write_standard_runs(root / "runs")
    write_triples(runs / "triples")  # found without --triples: a results folder may keep its set inside
    folder = write_run(runs, "ours", folder="odd")
    summary = json.loads((folder / "summary.json").read_text())
    summary["identity"]["method"] = NASTY
    (folder / "summary.json").write_text(json.dumps(summary))
    out = root / "out"
    assert main(["report", str(runs), "--out", str(out), "--with-paper", "--sort", "CLIP-T"]) == 0
    return out


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.links += [value for name, value in attrs if name in ("src", "href") and value is not None]


def test_report_folder_holds_every_table_and_picture(report):
    for name in ("tab1", "tab4", "tab5", "leaderboard", "reconstruction", "per_category"):
        for ext in ("csv", "md", "tex", "json"):
            assert (report / "tables" / f"{name}.{ext}").is_file(), f"{name}.{ext}"
    assert len(list((report / "figures").glob("compare_*.png"))) == len(CATEGORIES)  # one triple per category
    for name in ("metrics_bars.png", "tradeoff.png", "reconstruction.png"):
        assert (report / "figures" / name).is_file()
    leaderboard = pd.read_csv(report / "tables" / "leaderboard.csv")
    assert list(leaderboard["method"])[:3] == ["lora", "stage2-full", "ours"]  # --sort CLIP-T, best first
    significance = pd.read_csv(report / "tables" / "significance.csv")
    assert set(significance["method_b"]) == {"ours"} and "naive" in set(significance["method_a"])
    # the copy of ours under another name: identical scores, so no difference on any metric
    assert (significance[significance["method_a"] == NASTY]["verdict"] == "no significant difference").all()


def test_a_tiny_weights_report_says_so_at_its_top(report):
    md_head = (report / "index.md").read_text().splitlines()[:4]
    assert any("untrained tiny models" in line for line in md_head)
    html = (report / "index.html").read_text()
    assert html.index("untrained tiny models") < html.index("<h2>")


def test_html_is_self_contained_and_references_only_existing_files(report):
    parser = Links()
    parser.feed((report / "index.html").read_text())
    assert "script" not in parser.tags and "link" not in parser.tags
    assert parser.links
    for link in parser.links:
        parsed = urlparse(link)
        assert not parsed.scheme and not parsed.netloc and not link.startswith("/"), link
        assert (report / unquote(parsed.path)).is_file(), link
    pictures = {p.relative_to(report).as_posix() for p in (report / "figures").glob("*.png")}
    assert pictures <= {unquote(link) for link in parser.links}


def test_markdown_page_links_only_existing_files(report):
    text = (report / "index.md").read_text()
    targets = re.findall(r"\]\(([^)]+)\)", text)
    assert targets and all((report / unquote(t)).is_file() for t in targets)


def test_user_text_is_escaped_in_the_pages(report):
    html = (report / "index.html").read_text()
    assert NASTY not in html and "odd&lt;i&gt;|name_&amp;$\\q$" in html
    md = (report / "index.md").read_text()
    assert "odd\\<i\\>\\|name\\_&\\$\\\\q\\$" in md and NASTY not in md


def test_report_without_triples_or_untrained_weights(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "naive", weights="pretrained")
    write_run(runs, "ours", weights="pretrained")
    assert main(["report", str(runs)]) == 0
    text = (runs / "report" / "index.md").read_text()
    assert "untrained" not in text and "No triple set was found" in text
    assert "Paper (reported)" not in text  # reference rows only when asked


def test_cli_errors_are_one_sentence(tmp_path, capsys):
    assert main(["report", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err
    write_run(tmp_path / "runs", "ours")
    assert main(["report", str(tmp_path / "runs"), "--sort", "SSIM"]) == 2
    assert "Cannot sort by 'SSIM'" in capsys.readouterr().err


_PROBE = """<script>
window.addEventListener('load', () => {
  const images = Array.from(document.images);
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  const page = document.documentElement;
  console.log('spf-probe images=' + images.length + ' broken=' + broken.length +
              ' tables=' + document.querySelectorAll('table').length +
              ' overflow=' + (page.scrollWidth - page.clientWidth) + ' ' + broken.join(','));
});
</script>"""


def _chromium(page: Path, screenshot: Path) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             f"--screenshot={screenshot}", "--window-size=1400,2400", "--virtual-time-budget=5000",
             "--enable-logging=stderr", page.as_uri()],
            capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_headless_chromium_renders_tables_and_images_without_console_errors(report, tmp_path):
    # The page itself has no script; a copy with a small probe reports what the browser loaded.
    probe = report / "probe.html"
    probe.write_text((report / "index.html").read_text().replace("</body>", _PROBE + "\n</body>"))
    try:
        result = _chromium(probe, tmp_path / "probe.png")
    finally:
        probe.unlink()
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert len(console) == 1, console  # the probe's line and nothing else: no error, no warning
    found = re.search(r"spf-probe images=(\d+) broken=(\d+) tables=(\d+) overflow=(-?\d+)", console[0])
    assert found, console[0]
    images, broken, tables_shown, overflow = map(int, found.groups())
    assert overflow <= 0  # wide tables scroll in their own box; the page never scrolls sideways
    assert broken == 0 and images == len(list((report / "figures").glob("*.png")))
    assert tables_shown >= 7  # Tab. 1, 4, 5, leaderboard, reconstruction, per-category, significance
    shot = _chromium(report / "index.html", tmp_path / "index.png")
    assert shot.returncode == 0 and (tmp_path / "index.png").stat().st_size > 10_000
    assert not [line for line in shot.stderr.splitlines() if ":CONSOLE" in line]
