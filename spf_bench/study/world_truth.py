"""What a rater who knows the synthetic world's ground truth answers.

A simulated rater recognises each image it is shown by its bytes among the images the runs
produced for the comparison's triple, and reads the exact per-pair world metrics that
``evaluate`` recorded for it (the attribute oracle's reading and the world's identity
embedder). An image of another triple (a gold check's wrong image) preserves nothing of this
triple and loses every question. The rules, one per question:

- OBC: the higher attribute preservation (Attr-Pres) wins; on equal Attr-Pres the higher
  identity preservation (ID-Pres) wins when it is more than ``ID_MARGIN`` higher; else a tie.
- TAR: the higher target accuracy (Target-Acc) wins; equal is a tie.
- AP (our definition, the world has no taste): an image whose face is found beats one whose
  face is not; then the larger share of the world's ten attributes drawn as they should be
  (the asked ones as asked, the others as in the original) wins; equal is a tie. An artifact
  in this world is an attribute drawn wrong, so this is its "absence of artifacts".
A missing value (no face found) counts as the worst possible.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from spf_bench.core.errors import SpfError
from spf_bench.results.runs import MethodRun

WORLD_COLUMNS = ("Target-Acc", "Attr-Pres", "ID-Pres")
ID_MARGIN = 0.02
N_ATTRIBUTES = 10


@dataclass(frozen=True)
class Truth:
    target_acc: float
    attr_pres: float
    id_pres: float
    face_found: bool
    n_asked: int

    def key(self, question: str) -> tuple:
        def v(x: float) -> float:
            return x if math.isfinite(x) else -math.inf
        if question == "OBC":
            return (v(self.attr_pres), v(self.id_pres))
        if question == "TAR":
            return (v(self.target_acc),)
        share = (self.n_asked * v(self.target_acc) + (N_ATTRIBUTES - self.n_asked) * v(self.attr_pres)) / N_ATTRIBUTES
        return (float(self.face_found), share)


def _better(a: tuple, b: tuple, question: str) -> int:
    """1 when key a wins, -1 when b wins, 0 for a tie (ID-Pres only counts beyond its margin)."""
    if a[0] != b[0]:
        return 1 if a[0] > b[0] else -1
    if len(a) > 1 and a[1] != b[1]:
        margin = ID_MARGIN if question == "OBC" else 0.0
        if abs(a[1] - b[1]) > margin or not all(map(math.isfinite, (a[1], b[1]))):
            return 1 if a[1] > b[1] else -1
    return 0


def prefer(question: str, left: Truth | None, right: Truth | None) -> str:
    """'left', 'right' or 'tie'; None stands for an image of another triple."""
    if left is None or right is None:
        return "tie" if left is right else ("right" if left is None else "left")
    order = _better(left.key(question), right.key(question), question)
    return {1: "left", -1: "right", 0: "tie"}[order]


def outcome(question: str, against: Truth | None, other: Truth | None) -> float:
    """1, 0.5 or 0 from ``against``'s side: the oracle's win rate, computed directly."""
    return {"left": 1.0, "tie": 0.5, "right": 0.0}[prefer(question, against, other)]


def n_asked(target_caption: str) -> int:
    from spf_bench.world.world_metrics import target_attributes

    return len(target_attributes(target_caption))


def truths(runs: dict[str, MethodRun], captions: dict[str, str]) -> dict[str, dict[str, Truth]]:
    """Per method, per triple id: the ground truth of its customized image."""
    out: dict[str, dict[str, Truth]] = {}
    for method, run in runs.items():
        frame = run.per_pair
        if frame is None or any(c not in frame.columns for c in WORLD_COLUMNS):
            raise SpfError(f"The run of '{method}' has no world metrics ({', '.join(WORLD_COLUMNS)}); simulated raters "
                           "need runs scored under --weights synth.")
        out[method] = {}
        for row in frame.to_dict("records"):
            tid = str(row["id"])
            found = bool(row.get("face_found", True)) if str(row.get("face_found", "")) != "nan" else False
            out[method][tid] = Truth(float(row["Target-Acc"]), float(row["Attr-Pres"]), float(row["ID-Pres"]),
                                     found, n_asked(captions[tid]) if tid in captions else 1)
    return out


def by_bytes(runs: dict[str, MethodRun], table: dict[str, dict[str, Truth]]) -> dict[str, dict[str, Truth]]:
    """Per triple id, sha256 of an image file's bytes -> its truth (what a rater 'sees')."""
    out: dict[str, dict[str, Truth]] = {}
    for method, run in runs.items():
        for tid, truth in table[method].items():
            path = run.image_path(tid)
            if path is not None:
                out.setdefault(tid, {})[hashlib.sha256(path.read_bytes()).hexdigest()] = truth
    return out
