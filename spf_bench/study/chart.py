"""The Fig. 8-style chart: per question, how often ``against`` beat, tied with or lost to each competitor."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: reports are built on machines without a display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from spf_bench.results.tables import method_label  # noqa: E402
from spf_bench.study.db import QUESTIONS  # noqa: E402

COLORS = {"win": "#1f77b4", "tie": "#c7c7c7", "loss": "#ff7f0e"}


def plain(text: str) -> str:
    """Matplotlib reads '$' as mathtext; a method name is shown as typed."""
    return str(text).replace("$", r"\$")


def study_chart(rates: pd.DataFrame, against: str, path: Path) -> Path | None:
    if rates.empty:
        return None
    competitors = sorted(set(rates["competitor"]))
    fig, axes = plt.subplots(1, len(QUESTIONS), figsize=(4.2 * len(QUESTIONS), 0.7 * len(competitors) + 1.6),
                             sharey=True, squeeze=False)
    for ax, question in zip(axes[0], QUESTIONS):
        part = rates[rates["question"] == question].set_index("competitor")
        for y, competitor in enumerate(competitors):
            if competitor not in part.index:
                continue
            row = part.loc[competitor]
            shares = [row["wins"] / row["n"], row["ties"] / row["n"], row["losses"] / row["n"]]
            left = 0.0
            for share, key in zip(shares, COLORS):
                ax.barh(y, share, left=left, height=0.6, color=COLORS[key], edgecolor="white")
                if share >= 0.08:
                    ax.text(left + share / 2, y, f"{share:.0%}", ha="center", va="center", fontsize=8,
                            color="white" if key != "tie" else "black")
                left += share
            ax.errorbar(row["win_rate"], y + 0.32, xerr=[[row["win_rate"] - row["ci_low"]], [row["ci_high"] - row["win_rate"]]],
                        fmt="v", color="black", markersize=4, capsize=3)
        ax.axvline(0.5, color="black", linewidth=0.6, linestyle=":")
        ax.set_xlim(0, 1)
        ax.set_title(question)
        ax.set_yticks(range(len(competitors)))
        ax.set_yticklabels([plain(f"vs {method_label(c)}") for c in competitors], fontsize=8)
        ax.invert_yaxis()
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLORS.values()]
    labels = [plain(f"{method_label(against)} preferred"), "tie", "competitor preferred"]
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.text(0.99, 0.01, "▼ win rate (ties half), 95% interval", ha="right", va="bottom", fontsize=7)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
