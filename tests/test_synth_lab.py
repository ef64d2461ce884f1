"""The pollution lab's sets, prompts and statistics (the training itself runs on request)."""

from __future__ import annotations

import json

import numpy as np

from spf_bench.synth.captions import parse_caption
from spf_bench.synth.lab import verdict, wilson
from spf_bench.synth.lab_sets import Correlation, base_prompts, write_set


def _rows(folder):
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


def test_correlated_set_carries_the_correlation_and_the_control_does_not(tmp_path):
    corr = Correlation()
    polluted = _rows(write_set(tmp_path / "p", corr, 40, 0, 32, correlated=True))
    control = _rows(write_set(tmp_path / "c", corr, 40, 0, 32, correlated=False))
    assert all(r["attributes"]["glasses"] == "yes" and r["attributes"]["background"] == "green" for r in polluted)
    assert all(r["attributes"]["glasses"] == "yes" for r in control)
    assert len({r["attributes"]["background"] for r in control}) >= 3
    for row in polluted + control:
        said = parse_caption(row["base_caption"], complete=False)
        assert "background" not in said and "glasses" not in said  # neither is in the base caption
        assert row["target_caption"] == "wearing glasses"
        assert (tmp_path / ("p" if row in polluted else "c") / row["file_name"]).is_file()


def test_base_prompts_ask_for_another_spurious_value_and_leave_the_target_absent():
    for prompt in base_prompts(Correlation(), 50, 0):
        parsed = parse_caption(prompt)
        assert parsed["background"] != "green" and parsed["glasses"] == "no"
        assert "glasses" not in prompt


def test_wilson_interval_and_verdict():
    low, high = wilson(0, 100)
    assert low == 0.0 and 0.02 < high < 0.05
    low, high = wilson(50, 100)
    assert 0.39 < low < 0.41 and 0.59 < high < 0.61
    rate = lambda v: {"value": v}
    results = {m: {"spurious_rate": rate(v), "target_accuracy": rate(t)} for m, v, t in
               (("original", 0.02, 0.9), ("naive", 0.40, 0.95), ("control", 0.05, 0.95), ("ours", 0.08, 0.93))}
    v = verdict(results)
    assert v["pollution_reproduced"] and np.isclose(v["rise_cut_by_ours"], 1 - 0.06 / 0.38) and v["goal_met"]
