"""One name per method across the registry, the lab, the tables and the paper's numbers; the
lab's former names are accepted, each saying which method it means."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from spf_bench.methods import registry
from spf_bench.methods.checkpoint_files import parse_checkpoint_args, read_methods_file
from spf_bench.methods.registry import METHOD_ALIASES, canonical_method, get_method, known_methods
from spf_bench.lab.methods import LAB_METHODS, check_methods
from spf_bench.results.tables import method_order

ROOT = Path(__file__).resolve().parents[2]
LAB_ONLY = {"control"}  # stage 1 on the set without the correlation: a lab condition, not a method


@pytest.fixture(autouse=True)
def fresh_notes(monkeypatch):
    monkeypatch.setattr(registry, "_aliases_noted", set())


def test_the_lab_calls_every_method_by_its_registry_name():
    for name, entry in LAB_METHODS.items():
        if name not in LAB_ONLY:
            assert entry.suite == name, f"the lab calls '{entry.suite}' '{name}'"
    assert set(LAB_METHODS) - LAB_ONLY <= set(known_methods())


def test_tables_and_paper_numbers_use_registry_names():
    registered = set(known_methods())
    assert set(method_order()) <= registered
    paper = pd.read_csv(ROOT / "reports" / "paper_tables.csv")
    assert set(paper["method"]) <= registered
    assert not set(METHOD_ALIASES) & registered


def test_old_names_resolve_and_say_once_which_name_they_mean(capsys):
    assert get_method("ours-clip").name == "ours-direct-clip"
    assert get_method("ours-clip").name == "ours-direct-clip"
    err = capsys.readouterr().err
    assert err.count("note: the method 'ours-clip' is now called 'ours-direct-clip'") == 1
    assert canonical_method("ours") == "ours" and capsys.readouterr().err == ""


def test_old_names_in_checkpoint_arguments_and_methods_files_become_the_new_ones(tmp_path, capsys):
    assert parse_checkpoint_args(["ours-full-unet=ckpt/full"]) == {"stage2-full": Path("ckpt/full")}
    (tmp_path / "m.yaml").write_text("ours-stage2-only: only\n")
    assert read_methods_file(tmp_path / "m.yaml") == {"only-stage2": tmp_path / "only"}
    assert "'ours-stage2-only' is now called 'only-stage2'" in capsys.readouterr().err


def test_the_lab_accepts_old_names_as_the_new_ones(capsys):
    assert check_methods(("naive", "ours-clip", "ours-full-unet", "ours-stage2-only")) == \
        ("naive", "ours-direct-clip", "stage2-full", "only-stage2")
    assert capsys.readouterr().err.count("note: the method") == 3


def test_docs_name_methods_as_the_registry_does():
    # An old name may appear only where a paragraph says it is an accepted alias.
    for page in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))):
        for paragraph in page.read_text().split("\n\n"):
            for old, new in METHOD_ALIASES.items():
                if old in paragraph:
                    assert "accepted" in paragraph and new in paragraph, f"{page.name} calls {new!r} {old!r}"
