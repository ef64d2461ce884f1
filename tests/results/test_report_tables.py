"""Tables built from known per-pair frames: aggregates, intervals, marks, directions, layouts."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from spf_bench.results import tables
from spf_bench.core.errors import SpfError
from spf_bench.results.runs import load_paper_reference, load_runs
from support.report_runs import MEANS, METRIC_NAMES, per_pair_frame, write_run, write_standard_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return load_runs(write_standard_runs(tmp_path_factory.mktemp("runs")))


def test_aggregates_equal_the_known_means_and_intervals_cover_them(runs):
    table = tables.paper_table(runs, "tab1")
    assert list(table.values.index) == ["Naive fine-tuning", "LoRA", "Ours", "Ours (w/o SFCM)"]
    for label, method in zip(table.values.index, ["naive", "lora", "ours", "ours-no-sfcm"]):
        row = table.values.loc[label]
        for name, mean in zip(METRIC_NAMES, MEANS[method]):
            metric = tables.column(name)
            value = row[(metric.group, metric.header)]
            if method == "naive" and name == "ID":
                # t03 has no face: the mean leaves that pair out rather than counting it as 0
                expected = np.nanmean(per_pair_frame("naive", missing_id="t03")["ID"])
                assert value == pytest.approx(expected) and value != pytest.approx(mean)
            else:
                assert value == pytest.approx(mean, abs=1e-12), (method, name)
    low, high = table.ci_low, table.ci_high
    lpips = ("Preservation", "LPIPS ↓")
    assert (low[lpips] < table.values[lpips]).all() and (table.values[lpips] < high[lpips]).all()
    # No interval in summary.json: the percentile bootstrap of the mean (1000 resamples drawn by
    # numpy's PCG64 from seed 0, as the evaluator draws them) of the known offsets.
    offsets = (np.arange(10) - 4.5) * 0.01
    resampled = offsets[np.random.default_rng(0).integers(0, 10, size=(1000, 10))].mean(axis=1)
    expected = np.percentile(resampled, [2.5, 97.5])
    assert low[lpips].iloc[0] - table.values[lpips].iloc[0] == pytest.approx(expected[0])
    assert high[lpips].iloc[0] - table.values[lpips].iloc[0] == pytest.approx(expected[1])
    naive_id = next(r for r in table.rows if r.method == "naive").cells["ID"]
    assert naive_id.n == 9


def test_columns_are_grouped_and_carry_their_direction(runs):
    table = tables.paper_table(runs, "tab1")
    assert list(table.values.columns) == [
        ("Preservation", "FID ↓"), ("Preservation", "LPIPS ↓"), ("Preservation", "ID ↑"),
        ("Preservation", "CLIP-I ↑"), ("Preservation", "Seg-Cons ↑"), ("Responsiveness", "CLIP-T ↑"),
        ("Overall", "HPSv2 ↑"), ("Overall", "MPS ↑")]


def test_best_is_bold_and_second_underlined_with_directions_respected(runs):
    table = tables.paper_table(runs, "tab1")
    marks = table.mark_frame
    marks.columns = [c[1].split()[0] for c in marks.columns]
    # Lower FID and LPIPS are better: the smallest values win, not the largest.
    assert marks.loc["Ours (w/o SFCM)", "FID"] == "best" and marks.loc["Ours", "FID"] == "second"
    assert marks.loc["Naive fine-tuning", "FID"] == "" and marks.loc["LoRA", "FID"] == ""
    assert marks.loc["Ours (w/o SFCM)", "LPIPS"] == "best" and marks.loc["Ours", "LPIPS"] == "second"
    # Higher is better for the rest.
    assert marks.loc["LoRA", "CLIP-T"] == "best" and marks.loc["Ours", "CLIP-T"] == "second"
    assert marks.loc["Ours (w/o SFCM)", "CLIP-T"] == ""
    assert marks.loc["Ours", "MPS"] == "best" and marks.loc["LoRA", "MPS"] == "second"
    # A tie for second (0.23, 0.23) marks both.
    assert marks.loc["LoRA", "HPSv2"] == "second" and marks.loc["Ours (w/o SFCM)", "HPSv2"] == "second"


def test_two_rows_mark_only_the_best(runs):
    table = tables.paper_table(runs, "tab4")
    assert [r.method for r in table.rows] == ["stage2-full", "ours"]
    assert set(table.marks.values()) == {"best"}


def test_rows_of_methods_not_run_are_left_out(runs, tmp_path):
    table = tables.paper_table(runs, "tab5")
    assert [r.method for r in table.rows] == ["naive", "only-stage2", "ours"]
    only = load_runs(write_standard_runs(tmp_path / "few", methods=("lora",)))
    assert [r.method for r in tables.paper_table(only, "tab1").rows] == ["lora"]
    assert tables.paper_table(only, "tab4").rows == []


def test_paper_rows_are_labelled_references_and_never_ranked(runs):
    reference = load_paper_reference()
    table = tables.paper_table(runs, "tab1", reference)
    assert len(table.reference) == 10
    assert all(r.source == "paper" and r.label.startswith("Paper (reported): ") for r in table.reference)
    # The paper's Ours has CLIP-T 0.30, above every measured row; the measured best stays LoRA's 0.27.
    paper_ours = next(r for r in table.reference if r.method == "ours")
    assert paper_ours.cells["CLIP-T"].value == pytest.approx(0.30)
    lora_index = next(i for i, r in enumerate(table.rows) if r.method == "lora")
    assert table.mark(lora_index, "CLIP-T") == "best"
    assert all(i < len(table.rows) for i, _ in table.marks)
    assert list(table.reference_values.index)[0] == "Paper (reported): Naive Fine-Tuning (Rombach et al., 2022)"


def test_paper_data_maps_table_4_columns_by_name():
    reference = load_paper_reference()
    assert set(reference["table"]) == {"tab1", "tab4", "tab5"}
    known = set(tables.method_order())
    assert set(reference["method"]) <= known
    full = reference[(reference["table"] == "tab4") & (reference["method"] == "stage2-full")].iloc[0]
    # Tab. 4 prints HPSv2, MPS before CLIP-T: 0.22, 0.87, 0.26 must land in their own columns.
    assert (full["HPSv2"], full["MPS"], full["CLIP-T"]) == (0.22, 0.87, 0.26)
    ours = reference[reference["method"] == "ours"]
    assert (ours["FID"] == 4.50).all() and (ours["Seg-Cons"] == 75.74).all()


def test_leaderboard_has_identity_and_sorts_by_any_metric_in_its_direction(runs):
    board = tables.leaderboard(runs)
    assert [r.method for r in board.rows] == ["naive", "lora", "ours", "ours-no-sfcm", "stage2-full", "only-stage2"]
    first = board.rows[0]
    assert set(tables.IDENTITY_FIELDS) <= set(first.identity)
    assert first.identity["weights"] == "tiny" and len(first.identity["checkpoint_sha256"]) == 64
    assert first.info["Checkpoint"] == first.identity["checkpoint_sha256"][:12]
    by_fid = [r.method for r in tables.leaderboard(runs, sort_by="FID").rows]
    assert by_fid == ["ours-no-sfcm", "ours", "only-stage2", "stage2-full", "lora", "naive"]  # ascending: lower is better
    by_clip_t = [r.method for r in tables.leaderboard(runs, sort_by="CLIP-T").rows]
    assert by_clip_t[:3] == ["lora", "stage2-full", "ours"]  # descending: higher is better
    with pytest.raises(SpfError, match="Cannot sort by 'SSIM'"):
        tables.leaderboard(runs, sort_by="SSIM")


def test_reconstruction_and_per_category_tables(runs):
    recon = tables.reconstruction_table(runs)
    assert [r.method for r in recon.rows] == ["naive", "ours"]
    assert [m.name for m in recon.metrics] == ["FID", "LPIPS", "ID", "CLIP-I", "Seg-Cons"]
    assert recon.values.iloc[1, 0] == pytest.approx(MEANS["ours"][0] / 2)
    per_category = tables.per_category_table(runs)
    assert "FID" not in [m.name for m in per_category.metrics]  # a set value has no per-category mean
    assert len(per_category.rows) == 5 * len(MEANS)
    frame = per_pair_frame("ours")
    expected = frame.groupby("category")["CLIP-T"].mean()
    for row in per_category.rows:
        if row.method == "ours":
            assert row.cells["CLIP-T"].value == pytest.approx(expected[row.section])
    # Marks compare methods within one category, so every category has its own best.
    bests = {per_category.rows[i].section for (i, name), mark in per_category.marks.items() if name == "LPIPS" and mark == "best"}
    assert len(bests) == 5


def test_write_leaderboard_writes_csv_and_markdown(tmp_path):
    root = write_standard_runs(tmp_path / "runs", methods=("naive", "ours"))
    table = tables.write_leaderboard(root)
    csv = pd.read_csv(root / "leaderboard.csv")
    assert list(csv["method"]) == ["naive", "ours"] and len(table.rows) == 2
    assert csv.loc[1, "checkpoint_sha256"] == table.rows[1].identity["checkpoint_sha256"]
    assert csv.loc[1, "CLIP-T"] == pytest.approx(MEANS["ours"][5])
    text = (root / "leaderboard.md").read_text()
    assert "untrained tiny models" in text and "| ours |" in text
    assert not list(root.glob(".*tmp"))  # nothing half-written left behind


def test_bad_inputs_stop_with_one_sentence(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "ours")
    (root / "ours" / "summary.json").write_text("{not json")
    with pytest.raises(SpfError, match="summary.json is not valid JSON"):
        load_runs(root)
    write_run(root, "ours")
    per_pair_frame("ours").drop(columns=["category"]).to_csv(root / "ours" / "per_pair.csv", index=False)
    with pytest.raises(SpfError, match="lacks the column 'category'"):
        load_runs(root)
    with pytest.raises(SpfError, match="does not exist"):
        load_runs(tmp_path / "absent")
    summary = json.loads((root / "ours" / "summary.json").read_text())
    assert summary["identity"]["method"] == "ours"


def test_the_evaluators_interval_is_kept_when_it_describes_the_same_mean(tmp_path):
    folder = write_run(tmp_path / "runs", "ours")
    summary = json.loads((folder / "summary.json").read_text())
    summary["metrics"]["LPIPS"] = {"value": MEANS["ours"][1], "ci_low": 0.30, "ci_high": 0.40, "n": 10}
    summary["metrics"]["CLIP-T"] = {"value": 0.99, "ci_low": 0.98, "ci_high": 1.0, "n": 10}  # stale: not the pairs' mean
    (folder / "summary.json").write_text(json.dumps(summary))
    cells = tables.run_cells(load_runs(tmp_path / "runs")["ours"])
    assert (cells["LPIPS"].ci_low, cells["LPIPS"].ci_high) == (0.30, 0.40)
    assert cells["CLIP-T"].value == pytest.approx(MEANS["ours"][5])  # per_pair.csv is the record
    assert cells["CLIP-T"].ci_low < MEANS["ours"][5] < cells["CLIP-T"].ci_high < 0.98


def test_summary_written_the_evaluators_way_is_read(tmp_path):
    """Nulls for missing values, 'true'/'false' face flags, an 'n' entry per category."""
    frame = per_pair_frame("ours")
    frame["face_found"] = "true"
    frame.loc[0, ["ID", "face_found"]] = [np.nan, "false"]
    folder = write_run(tmp_path / "runs", "ours", frame)
    summary = json.loads((folder / "summary.json").read_text())
    summary["face_found_rate"] = None
    summary["per_category"] = {"clothing": {"LPIPS": None, "n": 2}}
    summary["metrics"]["FID"]["value"] = None
    (folder / "summary.json").write_text(json.dumps(summary))
    runs = load_runs(tmp_path / "runs")
    board = tables.leaderboard(runs)
    assert math.isnan(board.rows[0].cells["FID"].value) and board.rows[0].cells["ID"].n == 9
    assert tables.face_found_rate(runs["ours"]) == pytest.approx(0.9)
    clothing = [r for r in tables.per_category_table(runs).rows if r.section == "clothing"][0]
    assert clothing.cells["LPIPS"].value == pytest.approx(frame[frame["category"] == "clothing"]["LPIPS"].mean())
