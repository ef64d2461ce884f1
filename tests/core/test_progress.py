"""One progress policy: bars on a terminal, plain lines in logs, nothing under --no-progress."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from spf_bench.core import progress
from spf_bench.core.cli import run_cli
from spf_bench.core.errors import SpfError
from spf_bench.core.progress import progress_bar, progress_shown


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def default_policy(monkeypatch):
    monkeypatch.delenv(progress.ENV_MODE, raising=False)
    monkeypatch.delenv(progress.ENV_INTERVAL, raising=False)
    progress.set_enabled(True)
    yield
    progress.set_enabled(True)


def _draw(stream, n=500, **kwargs):
    with progress_bar(total=n, desc="work", file=stream, **kwargs) as bar:
        for _ in range(n):
            bar.update()
    return stream.getvalue()


def test_a_log_file_gets_plain_lines_not_carriage_returns(monkeypatch):
    monkeypatch.setenv(progress.ENV_INTERVAL, "0")  # a line per refresh, to see every one of them
    text = _draw(io.StringIO(), n=20)
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines and all(line.startswith("work:") for line in lines)
    assert lines[-1].startswith("work: 100%") and "20/20" in lines[-1]
    assert all(a != b for a, b in zip(lines, lines[1:]))  # the closing redraw is not a second line


def test_a_log_file_gets_few_lines_from_a_fast_bar():
    lines = _draw(io.StringIO(), n=5000).splitlines()
    assert 1 <= len(lines) <= 3  # the first draw, the last; none in between within 30 s
    assert "5000/5000" in lines[-1]


def test_a_terminal_gets_a_live_bar():
    assert "\r" in _draw(_Terminal(), n=50)


def test_the_environment_chooses_the_style(monkeypatch):
    monkeypatch.setenv(progress.ENV_MODE, "bar")
    assert "\r" in _draw(io.StringIO(), n=50)
    monkeypatch.setenv(progress.ENV_MODE, "off")
    assert _draw(_Terminal(), n=50) == ""
    monkeypatch.setenv(progress.ENV_MODE, "loud")
    with pytest.raises(SpfError, match="SPF_PROGRESS must be one of auto, bar, lines, off, not 'loud'"):
        _draw(io.StringIO())


def test_no_progress_hides_every_bar_until_the_block_ends():
    with progress_shown(False):
        assert _draw(_Terminal()) == ""
        with progress_shown(True):  # an inner "show" cannot undo the outer --no-progress
            assert _draw(_Terminal()) == ""
    assert _draw(_Terminal()) != ""
    assert _draw(_Terminal(), enabled=False) == ""


def test_the_command_line_flag_reaches_bars_made_deep_inside_a_command(capsys):
    def command(args):
        with progress_bar(total=3, desc="deep") as bar:  # default stream: stderr, as the suite's bars
            bar.update(3)
        return 0

    parser = argparse.ArgumentParser(prog="t")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=command)
    assert run_cli(parser, []) == 0
    assert "deep" in capsys.readouterr().err
    assert run_cli(parser, ["--no-progress"]) == 0
    assert "deep" not in capsys.readouterr().err
    assert progress.enabled()  # restored after the command


def _parsers(prog, package, modules):
    from spf_bench.core.cli import build_parser

    def walk(parser, path):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield path, parser
        for sub in subs:
            for name, child in sub.choices.items():
                yield from walk(child, (*path, name))

    return dict(walk(build_parser(prog, package, modules, ""), ()))


def test_every_long_command_takes_no_progress():
    from spf_bench.cli import COMMAND_MODULES as BENCH
    from spf_train.cli import COMMAND_MODULES as TRAIN

    bench, train = _parsers("spf-bench", "spf_bench", BENCH), _parsers("spf-train", "spf_train", TRAIN)
    long_commands = [bench[("run",)], bench[("triples", "build")], bench[("evaluate",)], bench[("report",)],
                     bench[("synth", "train")], bench[("synth", "lab")],
                     *(train[(c,)] for c in ("stage1", "stage2", "lora", "adalora", "tokencompose"))]
    for parser in long_commands:
        assert any("--no-progress" in a.option_strings for a in parser._actions), parser.prog


@pytest.mark.usefixtures("single_thread")
def test_training_shows_its_bar_and_hides_it_under_no_progress(tiny_pipe, tmp_path, capsys, monkeypatch):
    from spf_train.cli import main
    from spf_train.data import make_training_set

    monkeypatch.setenv(progress.ENV_INTERVAL, "0")
    data = make_training_set(tiny_pipe, [("a woman, long hair", "wearing glasses")], tmp_path / "data", steps=2)
    common = ["--data-dir", str(data), "--max-steps", "2", "--train-batch-size", "1", "--device", "cpu", "--checkpoint-every", "0"]
    assert main(["stage1", *common, "--output-dir", str(tmp_path / "a")]) == 0
    shown = capsys.readouterr().err
    assert "train:" in shown and "2/2" in shown and "\r" not in shown
    assert main(["stage1", *common, "--output-dir", str(tmp_path / "b"), "--no-progress"]) == 0
    hidden = capsys.readouterr().err
    assert "train:" not in hidden and "it/s" not in hidden
    # the flag is not a training setting: both runs saved the same config but for the folder
    a, b = (json.loads((tmp_path / d / "spf_config.json").read_text()) for d in "ab")
    assert {k: v for k, v in a.items() if k != "output_dir"} == {k: v for k, v in b.items() if k != "output_dir"}
