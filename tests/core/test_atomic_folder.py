"""atomic_folder: a build replaces what is in place whole, except the same work another
process finished meanwhile, which it keeps (three lab processes reaching one uncached
network at once must not delete the copy one of them is already reading)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spf_bench.core.atomic import atomic_folder


def _finished(folder: Path) -> bool:
    return (folder / "done").is_file()


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.endswith(".tmp"))


def test_a_folder_another_process_finished_meanwhile_is_kept(tmp_path):
    folder = tmp_path / "network"
    with atomic_folder(folder, finished=_finished) as partial:
        (partial / "mine").write_text("mine")
        (partial / "done").write_text("")
        folder.mkdir()  # another process renames its finished build into place first
        (folder / "theirs").write_text("theirs")
        (folder / "done").write_text("")
    assert sorted(p.name for p in folder.iterdir()) == ["done", "theirs"]
    assert _leftovers(tmp_path) == []  # this build's temporary is dropped


def test_an_unfinished_folder_in_place_is_replaced(tmp_path):
    folder = tmp_path / "network"
    folder.mkdir()
    (folder / "half").write_text("killed before it was done")
    with atomic_folder(folder, finished=_finished) as partial:
        (partial / "mine").write_text("mine")
        (partial / "done").write_text("")
    assert sorted(p.name for p in folder.iterdir()) == ["done", "mine"]
    assert _leftovers(tmp_path) == []


def test_without_a_finished_rule_whatever_is_in_place_is_replaced(tmp_path):
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    (folder / "done").write_text("an older training with other settings")
    with atomic_folder(folder) as partial:
        (partial / "new").write_text("new")
    assert sorted(p.name for p in folder.iterdir()) == ["new"]


def test_a_failed_build_leaves_the_folder_and_no_temporary(tmp_path):
    folder = tmp_path / "network"
    folder.mkdir()
    (folder / "done").write_text("")
    with pytest.raises(RuntimeError):
        with atomic_folder(folder, finished=_finished) as partial:
            (partial / "mine").write_text("mine")
            raise RuntimeError("killed mid-build")
    assert sorted(p.name for p in folder.iterdir()) == ["done"]
    assert _leftovers(tmp_path) == []
