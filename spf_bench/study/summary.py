"""One study's analysis in one place: the frames, the files they are written to, the report blocks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from spf_bench.results.pages import Block, frame_markdown
from spf_bench.results.runs import MethodRun
from spf_bench.core.atomic import write_text_atomic
from spf_bench.study.agreement import GOLD_PASS, gold_screen, kept_votes, metric_agreement, metric_human_wide, rater_agreement
from spf_bench.study.analysis import BOOTSTRAP_DRAWS, BT_DRAWS, bradley_terry, load_votes, win_rates
from spf_bench.study.chart import study_chart
from spf_bench.study.db import DB_NAME, connect, existing_db


@dataclass
class StudySummary:
    study: dict
    votes: pd.DataFrame
    screen: pd.DataFrame
    rates: pd.DataFrame
    strengths: pd.DataFrame
    agreement: pd.DataFrame
    metric_human: pd.DataFrame

    @property
    def dropped(self) -> list[str]:
        return sorted(self.screen.loc[~self.screen["kept"], "rater"])


def summarize(db, runs: dict[str, MethodRun], study_name: str | None = None, draws: int = BOOTSTRAP_DRAWS,
              bt_draws: int = BT_DRAWS, seed: int = 0) -> StudySummary:
    study, votes = load_votes(existing_db(db), study_name)
    screen = gold_screen(votes)
    kept = kept_votes(votes, screen)
    shown = {m: runs[m] for m in [study["against"], *study["methods"]] if m in runs}
    return StudySummary(study=study, votes=votes, screen=screen, rates=win_rates(kept, draws, seed),
                        strengths=bradley_terry(kept, study["against"], bt_draws, seed) if not kept.empty else pd.DataFrame(),
                        agreement=rater_agreement(kept) if not kept.empty else pd.DataFrame(),
                        metric_human=metric_agreement(kept, shown, study["against"], draws, seed) if not kept.empty else pd.DataFrame())


def _texts(summary: StudySummary) -> dict[str, str]:
    study = summary.study
    kept = int(summary.screen["kept"].sum())
    return {
        "rates": (f"Win rate of {study['against']} against each competitor per question, ties counted half; the 95% "
                  "interval resamples raters and triples together (two-way bootstrap)."),
        "strengths": (f"Bradley-Terry log-strengths per question with {study['against']} fixed at 0 (higher is "
                      "preferred; a difference d means odds e^d to 1), intervals from the same bootstrap."),
        "agreement": "Krippendorff's alpha (nominal) among the kept raters, over units seen by two raters or more.",
        "screen": (f"{kept} of {len(summary.screen)} raters kept; a rater with less than {GOLD_PASS:.0%} of the gold "
                   f"answers right is dropped: {', '.join(summary.dropped) or 'none'}."),
        "metric_human": ("How often each automatic metric prefers the same image as the raters' majority, per "
                         "question (a metric that scores both images equal counts half; interval over triples)."),
    }


def write_summary(summary: StudySummary, folder: Path, prefix: str = "", chart_prefix: str | None = None) -> dict[str, list[str]]:
    """CSV and Markdown of every table, and the chart; returns the written paths per table, relative to ``folder``."""
    written: dict[str, list[str]] = {}
    frames = {"rates": summary.rates, "strengths": summary.strengths, "agreement": summary.agreement,
              "screen": summary.screen, "metric_human": summary.metric_human}
    for key, frame in frames.items():
        paths = [f"{prefix}study_{key}.csv", f"{prefix}study_{key}.md"]
        write_text_atomic(folder / paths[0], frame.to_csv(index=False))
        write_text_atomic(folder / paths[1], frame_markdown(frame) if not frame.empty else "(no votes yet)\n")
        written[key] = paths
    chart_name = f"{prefix if chart_prefix is None else chart_prefix}study_chart.png"
    chart = study_chart(summary.rates, summary.study["against"], folder / chart_name)
    written["chart"] = [chart_name] if chart else []
    return written


TITLES = {"rates": "win rates", "strengths": "Bradley-Terry strengths", "agreement": "inter-rater agreement",
          "screen": "gold-check screening", "metric_human": "metric-human agreement"}


def study_blocks(runs_dir: Path, runs: dict[str, MethodRun], folder: Path) -> list[Block]:
    """The report's user-study sections, one set per study in the database beside the runs (none if absent)."""
    db = Path(runs_dir) / DB_NAME
    if not db.is_file():
        return []
    with connect(existing_db(db)) as connection:
        names = [r["name"] for r in connection.execute("SELECT name FROM studies ORDER BY id")]
    blocks = []
    for index, name in enumerate(names):
        summary = summarize(db, runs, name)
        if summary.votes.empty:
            blocks.append(Block(f"User study '{name}'", text="No vote has been cast yet."))
            continue
        written = write_summary(summary, folder, f"tables/study{index + 1}_", f"figures/study{index + 1}_")
        texts = _texts(summary)
        if written["chart"]:
            blocks.append(Block(f"User study '{name}' (Fig. 8)", image=written["chart"][0], text=texts["screen"]))
        for key in ("rates", "strengths", "agreement", "metric_human", "screen"):
            frame = getattr(summary, key)
            frame = metric_human_wide(frame) if key == "metric_human" else frame
            blocks.append(Block(f"User study '{name}': {TITLES[key]}", frame=frame, text=texts[key], links=written[key]))
    return blocks
