"""A world Tab. 1: every Tab. 1 method and ablation trained in the lab over several training
seeds, each scored on the same prompts, compared with ours pair by pair and with the paper.

One :class:`~.experiment.Lab` per training seed (``OUT/seed-<s>``): the seed draws the fine-tuning
set, the training noise and the prompts, so the spread over seeds is the spread a user
retraining on another sample of the same data would see. Each lab trains every method with
the same steps, batch and learning rates, draws and scores every image, and resumes from
what it finished. The table is then built from per-image records alone (``records.csv``,
see :mod:`.table_stats`):

- from the suite's evaluator, each per-pair metric of ``runs/<model>/per_pair.csv`` (the
  eight, the world's Target-Acc, Attr-Pres and ID-Pres) and the set-level FID;
- from the oracle on the saved images: ``Pollution`` (the base prompt's image shows the
  spurious value the prompt did not ask for; in customization mode, the share of the set's
  biased attributes shown at their biased value, each asked with another) and ``Base-Change`` (share of attributes the
  oracle reads differently from the original model's image of the same base prompt);
- ``PR-Summary``, the preservation-and-responsiveness summary defined in ``docs/synth.md``
  before anything was measured: 0.5 x Target-Acc + 0.5 x the mean of Attr-Pres, ID-Pres and
  1 - Pollution (those of the three that exist for the pair).

Outputs: ``records.csv``, ``table.json`` and ``table.md`` (values with intervals over seeds
and prompts; per ablation and metric the paper's direction against ours, the world's, the
paired test and whether they agree; the mask variants' ordering; in customization mode the
customization goal's verdict, :func:`spf_bench.lab.customization.verdict` of the table's means).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from spf_bench.core.atomic import write_text_atomic
from spf_bench.core.errors import SpfError
from spf_bench.core.progress import progress_bar
from spf_bench.lab import customization as lab_custom, table_stats as st
from spf_bench.lab.experiment import ORIGINAL, Lab, LabConfig
from spf_bench.lab.methods import CORRELATED, LAB_METHODS, TAB1_METHODS, check_methods
from spf_bench.metrics import ALL_METRICS
from spf_bench.results.render import escape_markdown
from spf_bench.world.attributes import NAMES, index_of

REFERENCE = "ours"
POLLUTION, BASE_CHANGE, SUMMARY = "Pollution", "Base-Change", "PR-Summary"
LOWER_IS_BETTER = {POLLUTION, BASE_CHANGE}
MASK_ORDER = ("ours-mask-oracle", "ours", "ours-mask-inverted")


def higher_is_better(metric: str) -> bool | None:
    if metric in LOWER_IS_BETTER:
        return False
    if metric == SUMMARY:
        return True
    cls = ALL_METRICS.get(metric)
    return None if cls is None else bool(cls.higher_is_better)


@dataclass
class TableConfig:
    lab: LabConfig = field(default_factory=lambda: LabConfig(prompts=400, methods=TAB1_METHODS))
    seeds: tuple[int, ...] = (0, 1, 2)


class LabTable:
    def __init__(self, out: Path, config: TableConfig, base_model: Path, clip_model: Path):
        check_methods(config.lab.methods)
        if REFERENCE not in config.lab.methods:
            raise SpfError(f"The world table compares every method with '{REFERENCE}'; add it to the methods.")
        if len(set(config.seeds)) != len(config.seeds) or not config.seeds:
            raise SpfError(f"The training seeds must be distinct and at least one, not {list(config.seeds)}.")
        self.out, self.config = Path(out), config
        self.base_model, self.clip_model = Path(base_model), Path(clip_model)

    def lab(self, seed: int) -> Lab:
        return Lab(self.out / f"seed-{seed}", replace(self.config.lab, seed=seed), self.base_model, self.clip_model)

    def run(self, oracle, report=print) -> dict:
        """Train, draw and score every seed's lab (each resumes), then build the table."""
        frames = []
        for seed in progress_bar(self.config.seeds, desc="world table: training seeds", unit="seed"):
            lab = self.lab(seed)
            lab.measure(oracle, report)
            frames.append(seed_records(lab, oracle, seed))
        records = pd.concat(frames, ignore_index=True)
        write_text_atomic(self.out / "records.csv", records.to_csv(index=False))
        table = build_table(records, [ORIGINAL, *self.config.lab.methods], paper_reference())
        if self.config.lab.customization is not None:
            table["verdict"] = customization_verdict(table)
        table["config"] = {"seeds": list(self.config.seeds), "lab": json.loads(json.dumps(self.config.lab.pinned(), default=str)),
                           "methods": list(self.config.lab.methods)}
        write_text_atomic(self.out / "table.json", json.dumps(_json_safe(table), indent=1) + "\n")
        write_text_atomic(self.out / "table.md", render_table(table))
        return table


# ----------------------------------------------------------------------------- records

def seed_records(lab: Lab, oracle, seed: int) -> pd.DataFrame:
    """Every per-image value of one seed's lab, as records (see :mod:`.table_stats`)."""
    corr, custom = lab.config.correlation, lab.config.customization
    s_i, s_v = NAMES.index(corr.spurious), index_of(corr.spurious, corr.spurious_value)
    models = [ORIGINAL, *lab.config.methods]
    images = {m: lab.images(m) for m in models}  # each model's drawings, loaded once
    base_labels = {m: oracle.predict(images[m]["base"]) for m in models}
    rows = []

    def add(model, metric, values, prompts=None):
        prompts = range(len(values)) if prompts is None else prompts
        rows.extend((seed, model, int(p), metric, float(v)) for p, v in zip(prompts, values))

    for m in models:
        if custom is not None:
            add(m, POLLUTION, lab_custom.pollution(base_labels[m], custom.biases))
        else:
            add(m, POLLUTION, (base_labels[m][:, s_i] == s_v).astype(float))
        add(m, BASE_CHANGE, (base_labels[m] != base_labels[ORIGINAL]).mean(axis=1))
        # The oracle's reading of each customized image's own target is the evaluator's
        # Target-Acc per pair; taken from the oracle, the table has it whatever was scored.
        add(m, lab_custom.TARGET, lab.target_hits(oracle.predict(images[m]["custom"])).astype(float))
        run = lab.run(m)
        if (run / "per_pair.csv").is_file():
            pairs = pd.read_csv(run / "per_pair.csv")
            prompts = [int(str(i).lstrip("t")) for i in pairs["id"]]
            for metric in (c for c in pairs.columns if c in ALL_METRICS and c != lab_custom.TARGET):
                add(m, metric, pairs[metric].to_numpy(dtype=float), prompts)
            fid = json.loads((run / "summary.json").read_text())["metrics"].get("FID", {}).get("value")
            if fid is not None:
                add(m, "FID", [fid], [st.SET_LEVEL])
    # A metric the run did not score leaves an empty per-pair column (and a pair without a
    # face an empty ID): no value, no record.
    records = pd.DataFrame(rows, columns=list(st.RECORD_COLUMNS)).dropna(subset=["value"])
    return pd.concat([records, summary_records(records)], ignore_index=True)


def summary_records(records: pd.DataFrame) -> pd.DataFrame:
    """PR-Summary per (seed, model, prompt): 0.5 Target-Acc + 0.5 mean(Attr-Pres, ID-Pres,
    1 - Pollution), over those of the three the pair has; none without Target-Acc."""
    wide = records[records["prompt"] != st.SET_LEVEL].pivot_table(
        index=["seed", "model", "prompt"], columns="metric", values="value", aggfunc="first")
    if "Target-Acc" not in wide.columns:
        return pd.DataFrame(columns=list(st.RECORD_COLUMNS))
    parts = pd.concat([wide.get("Attr-Pres"), wide.get("ID-Pres"), 1.0 - wide[POLLUTION]], axis=1)
    value = 0.5 * wide["Target-Acc"] + 0.5 * parts.mean(axis=1, skipna=True)
    out = value.rename("value").reset_index().dropna(subset=["value"])
    out["metric"] = SUMMARY
    return out[list(st.RECORD_COLUMNS)]


# ----------------------------------------------------------------------------- the table

def paper_reference() -> dict[str, dict[str, float]]:
    """The paper's Tab. 1 as {suite method: {metric: value}}."""
    from spf_bench.results.runs import load_paper_reference

    frame = load_paper_reference()
    frame = frame[frame["table"] == "tab1"]
    metrics = [c for c in frame.columns if c not in ("table", "row", "method", "paper_label")]
    return {row["method"]: {m: float(row[m]) for m in metrics} for _, row in frame.iterrows()}


def paper_row(model: str) -> str | None:
    """The paper's Tab. 1 row a lab method stands for (the control set and ours-direct-clip have none)."""
    if model not in LAB_METHODS or LAB_METHODS[model].data != CORRELATED:
        return None
    return LAB_METHODS[model].suite


def metric_order(records: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(records["metric"]))
    first = [m for m in ALL_METRICS if m in present]
    return first + [m for m in (POLLUTION, BASE_CHANGE, SUMMARY) if m in present]


def build_table(records: pd.DataFrame, models: list[str], paper: dict[str, dict[str, float]]) -> dict:
    """Every figure of the table from ``records`` (and the paper's Tab. 1)."""
    metrics = metric_order(records)
    values = {m: {k: st.cell(records, m, k) for k in metrics} for m in models}
    comparisons = {}
    for model in models:
        if model in (REFERENCE, ORIGINAL):
            continue
        row = paper_row(model)
        rows = {}
        for metric in metrics:
            better = higher_is_better(metric)
            test = st.paired(records, model, REFERENCE, metric)
            paper_dir = ""
            if row in paper and REFERENCE in paper and metric in paper[row]:
                paper_dir = st.direction(paper[row][metric] - paper[REFERENCE][metric], better)
            world, agrees = st.agreement(paper_dir, test, better)
            rows[metric] = {"paper": paper_dir, "world": world, "agrees": agrees, **test}
        comparisons[model] = rows
    return {"metrics": metrics, "models": models, "values": values, "vs_ours": comparisons,
            "agreement": agreement_counts(comparisons), "mask_order": mask_order(records, models)}


def agreement_counts(comparisons: dict[str, dict[str, dict]]) -> dict[str, dict[str, int]]:
    """Per model with a paper row, how many of its metrics with a paper direction the world
    agrees with, contradicts, or does not separate from ours; ``all`` sums the models."""
    counts = {}
    for model, rows in comparisons.items():
        tally = {kind: sum(r["agrees"] == kind for r in rows.values()) for kind in st.AGREEMENT}
        if any(tally.values()):
            counts[model] = tally
    if counts:
        counts["all"] = {kind: sum(t[kind] for t in counts.values()) for kind in st.AGREEMENT}
    return counts


def mask_order(records: pd.DataFrame, models: list[str]) -> dict:
    """ours-mask-oracle >= ours > ours-mask-inverted on PR-Summary: the first holds unless
    the oracle is significantly below ours, the second needs ours significantly above."""
    if not all(m in models for m in MASK_ORDER) or SUMMARY not in set(records["metric"]):
        return {}
    oracle_vs_ours = st.paired(records, "ours-mask-oracle", REFERENCE, SUMMARY)
    ours_vs_inverted = st.paired(records, REFERENCE, "ours-mask-inverted", SUMMARY)
    first = bool(math.isfinite(oracle_vs_ours["ci_high"]) and oracle_vs_ours["ci_high"] >= 0)
    second = bool(math.isfinite(ours_vs_inverted["ci_low"]) and ours_vs_inverted["ci_low"] > 0)
    return {"oracle_minus_ours": oracle_vs_ours, "ours_minus_inverted": ours_vs_inverted,
            "oracle_at_least_ours": first, "ours_above_inverted": second, "holds": first and second}


def customization_verdict(table: dict) -> dict:
    """The customization goal (:func:`spf_bench.lab.customization.verdict`) of the table's
    per-model means over seeds and prompts."""
    wanted = (lab_custom.TARGET, *lab_custom.PRESERVATION)
    values = {m: {k: table["values"][m][k]["value"] for k in wanted if k in table["values"][m]} for m in table["models"] if m != ORIGINAL}
    return lab_custom.verdict(values)


# ----------------------------------------------------------------------------- rendering

def _value(entry: dict) -> str:
    if not entry or not math.isfinite(entry.get("value", math.nan)):
        return "–"
    low, high = entry["ci_low"], entry["ci_high"]
    return f"{entry['value']:.3f}" + (f" [{low:.3f}, {high:.3f}]" if math.isfinite(low) else "")


def _diff(entry: dict) -> str:
    if not math.isfinite(entry["mean_diff"]):
        return "–"
    return f"{entry['mean_diff']:+.3f} [{entry['ci_low']:+.3f}, {entry['ci_high']:+.3f}], p={entry['p']:.3g}"


def render_table(table: dict) -> str:
    md = escape_markdown
    config = table.get("config", {})
    lines = ["# World Tab. 1", "",
             f"Training seeds {', '.join(map(str, config.get('seeds', [])))}; each value is the mean over seeds of "
             "the per-seed mean over prompts, with a 95% interval from a bootstrap over seeds and prompts "
             "(FID: one value per seed, Student-t over seeds).", ""]
    metrics = table["metrics"]
    lines += ["| model | " + " | ".join(md(m) for m in metrics) + " |", "|---|" + "---|" * len(metrics)]
    lines += ["| " + md(m) + " | " + " | ".join(_value(table["values"][m][k]) for k in metrics) + " |" for m in table["models"]]
    if table.get("agreement"):
        lines += ["", "## Agreement with the paper's Tab. 1", "",
                  f"Per model, its metrics where the paper gives a direction against {REFERENCE}: the world's "
                  "direction agrees, contradicts it, or is not separated from ours (paired 95% interval holds 0).", "",
                  "| model | agrees | contradicts | not separated |", "|---|---|---|---|"]
        lines += [f"| {md(m)} | " + " | ".join(str(t[kind]) for kind in st.AGREEMENT) + " |" for m, t in table["agreement"].items()]
    lines += ["", f"## Every model against {REFERENCE} (model - {REFERENCE}, paired on seed and prompt)", "",
              "Directions say better or worse than ours by each metric's own sense; the world has a direction only "
              "where the paired 95% interval excludes 0.", ""]
    for model, rows in table["vs_ours"].items():
        lines += [f"### {md(model)}", "", "| metric | paper | world | difference [95% CI], p | agree |", "|---|---|---|---|---|"]
        lines += [f"| {md(k)} | {r['paper'] or '–'} | {r['world'] or '–'} | {_diff(r)} | {r['agrees']} |" for k, r in rows.items()]
        lines.append("")
    order = table.get("mask_order")
    if order:
        lines += ["## Mask variants on the PR-Summary (ours-mask-oracle >= ours > ours-mask-inverted)", "",
                  f"- ours-mask-oracle - ours: {_diff(order['oracle_minus_ours'])}: at least ours: {order['oracle_at_least_ours']}",
                  f"- ours - ours-mask-inverted: {_diff(order['ours_minus_inverted'])}: above: {order['ours_above_inverted']}",
                  f"- ordering holds: {order['holds']}", ""]
    if table.get("verdict"):
        from spf_bench.lab.report import customization_verdict_lines

        lines += customization_verdict_lines(table["verdict"])
    return "\n".join(lines)


def _json_safe(value):
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return _json_safe(value.item())
    return value
