"""The lab's human-readable outputs: ``summary.md`` (rates and metrics per model) and
``grid.png`` with its legend (``grid.txt``): per model, a row of base-prompt images (before:
does the spurious value appear unasked?) over a row of customized-prompt images (after: does
the target appear, and what else changed?), a white line between models."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from spf_bench.core.atomic import write_text_atomic
from spf_bench.metrics import registry
from spf_bench.results.render import escape_markdown

GRID_COLUMNS = 8
GRID_ZOOM = 3  # 32 px renders are too small to read at their own size


def grid_rows(models: list[str]) -> list[tuple[str, str]]:
    """(model, prompt kind) of each grid row, top to bottom."""
    return [(model, kind) for model in models for kind in ("base", "custom")]


def write_grid(path: Path, images: dict[tuple[str, str], np.ndarray], models: list[str]) -> list[str]:
    """Save the grid and return its legend, one line per row."""
    from PIL import Image

    rows = grid_rows(models)
    strips = []
    for model, kind in rows:
        strip = np.concatenate(list(images[(model, kind)][:GRID_COLUMNS]), axis=1)
        strips.append(strip)
        if kind == "custom":  # a white line after each model's before/after pair
            strips.append(np.full((1, *strip.shape[1:]), 255, dtype=strip.dtype))
    grid = np.concatenate(strips[:-1], axis=0)
    Image.fromarray(grid).resize((grid.shape[1] * GRID_ZOOM, grid.shape[0] * GRID_ZOOM), Image.NEAREST).save(path)
    legend = [f"row {i + 1}: {model}, {'base prompts (before)' if kind == 'base' else 'customized prompts (after)'}"
              for i, (model, kind) in enumerate(rows)]
    write_text_atomic(path.with_suffix(".txt"), "\n".join(legend) + "\n")
    return legend


def _rate(entry: dict) -> str:
    return f"{entry['value']:.3f} [{entry['ci_low']:.3f}, {entry['ci_high']:.3f}]"


def _metric(entry: dict | None) -> str:
    if not entry or entry.get("value") is None or not math.isfinite(entry["value"]):
        return "–"
    low, high = entry.get("ci_low"), entry.get("ci_high")
    interval = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
    return f"{entry['value']:.3f}{interval}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def render_summary(summary: dict, prompts: dict[str, list[str]], legend: list[str]) -> str:
    """``summary.md``: the verdict, rates with 95% Wilson intervals, the eight metrics with
    their intervals, per-attribute change rates and the grid's legend."""
    corr, results = summary["config"]["correlation"], summary["results"]
    name = lambda m: escape_markdown(m)  # noqa: E731 - model names reach Markdown from the command line
    lines = [f"# Pollution lab: {escape_markdown(corr['target'])}={escape_markdown(corr['target_value'])} "
             f"with {escape_markdown(corr['spurious'])}={escape_markdown(corr['spurious_value'])}", ""]
    shown = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines += [f"- {escape_markdown(k)}: {escape_markdown(shown(v))}" for k, v in summary["verdict"].items() if not isinstance(v, dict)]
    lines += ["", "## Rates (95% Wilson intervals)", ""]
    rise, cut = summary["verdict"].get("spurious_rise", {}), summary["verdict"].get("rise_cut", {})
    lines += _table(["model", "spurious on base prompts", "rise", "share of naive's rise removed", "target unasked",
                     "target accuracy", "spurious on customized"],
                    [[name(m), _rate(r["spurious_rate"]), f"{rise[m]:+.3f}" if m in rise else "", f"{cut[m]:.2f}" if m in cut else "",
                      _rate(r["target_rate_unasked"]), _rate(r["target_accuracy"]), _rate(r["spurious_rate_customized"])]
                     for m, r in results.items()])
    return "\n".join(lines + _common_sections(results, prompts, legend)) + "\n"


def _common_sections(results: dict, prompts: dict[str, list[str]], legend: list[str]) -> list[str]:
    """The sections both lab modes end with: the metrics, change rates, the grid's legend and
    the first prompt of each kind (model names and prompts escaped: they come from users)."""
    md = escape_markdown
    # The eight in their order, then whatever else the evaluator scored (under synth it adds
    # the world's exact metrics on its own).
    scored = [k for r in results.values() for k in r.get("metrics", {})]
    known = tuple(registry.metrics())
    metrics = [m for m in known if m in scored] + list(dict.fromkeys(k for k in scored if k not in known))
    lines = []
    if metrics:
        lines += ["", "## Metrics of (original model on the base prompt, model on the customized prompt) pairs (95% bootstrap intervals)", ""]
        lines += _table(["model", *metrics], [[md(m), *(_metric(r.get("metrics", {}).get(k)) for k in metrics)] for m, r in results.items()])
    attributes = list(next(iter(results.values()))["change_rate"])
    lines += ["", "## Change rates on base prompts against the original model", ""]
    lines += _table(["model", *attributes], [[md(m), *(f"{r['change_rate'][a]['value']:.2f}" for a in attributes)] for m, r in results.items()])
    lines += ["", "## Grid (grid.png)", ""] + [f"- {md(line)}" for line in legend]
    lines += ["", "## Prompts (first of each kind)", ""]
    lines += [f"- {kind}: {md(texts[0])}" for kind, texts in prompts.items() if texts]
    return lines


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def customization_verdict_lines(verdict: dict) -> list[str]:
    """Markdown of the customization goal's verdict (:func:`spf_bench.lab.customization.verdict`)."""
    md = escape_markdown
    lines = ["## The customization goal", ""]
    lines += [f"- {md(k)}: {md(_shown(v))}" for k, v in verdict.items() if not isinstance(v, dict)]
    fall, removed = verdict.get("fall_points", {}), verdict.get("removed", {})
    if fall:
        lines += ["", "Naive's fall below the control in points (Pollution counted as 1 - Pollution), and the share of it "
                  "each model removes, 1 - (control - model) / (control - naive):", ""]
        shown = list(fall)
        lines += _table(["model", *map(md, shown)], [["naive's fall", *(f"{fall[k]:+.1f}" for k in shown)]] +
                        [[md(m), *(f"{r[k]:.2f}" if k in r else "–" for k in shown)] for m, r in removed.items()])
    return lines + [""]


def render_customization_summary(summary: dict, prompts: dict[str, list[str]], legend: list[str]) -> str:
    """``summary.md`` of a lab in customization mode: the verdict (naive's fall below the
    control per preservation metric, the share each model removes), pollution and target
    accuracy per model and per biased attribute and target, the metrics, change rates and grid."""
    md, config, results = escape_markdown, summary["config"], summary["results"]
    custom, verdict = config["customization"], summary["verdict"]
    biases = ", ".join(f"{b['attribute']}={b['value']}:{b['share']}" for b in custom["biases"]) or "none"
    lines = [f"# Pollution lab on a customization set: targets {md(', '.join(custom['targets']))}; "
             f"{custom['identities']} identities; biases {md(biases)}", ""]
    lines += customization_verdict_lines(verdict)
    lines += ["## Pollution on base prompts and target accuracy on customized prompts (95% intervals)", ""]
    attrs = list(next(iter(results.values()))["pollution_by_attribute"])
    targets = list(next(iter(results.values()))["target_accuracy_by_target"])
    lines += _table(["model", "Pollution", *(f"{md(a)} at its biased value" for a in attrs), "Pollution on customized prompts",
                     "target accuracy", "a target unasked"],
                    [[md(m), _metric(r["pollution"]), *(_rate(r["pollution_by_attribute"][a]) for a in attrs),
                      _metric(r["pollution_customized"]), _rate(r["target_accuracy"]), _rate(r["target_rate_unasked"])]
                     for m, r in results.items()])
    lines += ["", "## Target accuracy per target", ""]
    lines += _table(["model", *map(md, targets)], [[md(m), *(_rate(r["target_accuracy_by_target"][t]) for t in targets)]
                                                  for m, r in results.items()])
    return "\n".join(lines + _common_sections(results, prompts, legend)) + "\n"
