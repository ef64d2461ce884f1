"""Casting and reading votes: what the rating pages and the simulated raters go through.

Every check happens before anything is written, inside one IMMEDIATE transaction, so a bad
request stores nothing and a good one is committed before the answer is sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from spf_bench.core.errors import SpfError
from spf_bench.study.db import CHOICES, QUESTIONS, connect
from spf_bench.study.sampling import now


class VoteError(SpfError):
    """A request the server refuses, with the HTTP status that says why."""

    def __init__(self, status: int, sentence: str):
        super().__init__(sentence)
        self.status = status


@dataclass
class Progress:
    rater_id: int
    label: str
    study: str
    done: int
    total: int
    comparison: dict | None  # the next unanswered comparison, None when all are answered


def _rater(connection, token: str):
    row = connection.execute(
        "SELECT raters.id, raters.label, studies.name AS study FROM raters JOIN studies ON studies.id = raters.study_id "
        "WHERE raters.token = ?", (str(token),)).fetchone()
    if row is None:
        raise VoteError(404, "This rater link is not valid: no rater has that token.")
    return row


def progress(db, token: str) -> Progress:
    with connect(db) as connection:
        rater = _rater(connection, token)
        total = connection.execute("SELECT COUNT(*) FROM comparisons WHERE rater_id=?", (rater["id"],)).fetchone()[0]
        done = connection.execute("SELECT COUNT(*) FROM votes JOIN comparisons ON comparisons.id = votes.comparison_id "
                                  "WHERE comparisons.rater_id=?", (rater["id"],)).fetchone()[0]
        row = connection.execute(
            "SELECT c.* FROM comparisons c LEFT JOIN votes v ON v.comparison_id = c.id "
            "WHERE c.rater_id=? AND v.comparison_id IS NULL ORDER BY c.position LIMIT 1", (rater["id"],)).fetchone()
    return Progress(rater["id"], rater["label"], rater["study"], done, total, dict(row) if row else None)


def parse_answers(fields: dict) -> tuple[int, dict[str, str]]:
    """The comparison id and the three answers of a vote body, or a 400 naming what is wrong."""
    if not isinstance(fields, dict):
        raise VoteError(400, "The vote must be a form or a JSON object.")
    raw = fields.get("comparison")
    try:
        comparison = int(str(raw))
    except ValueError:
        raise VoteError(400, "The vote lacks a whole-number 'comparison' field.") from None
    answers = {}
    for question in QUESTIONS:
        value = fields.get(question)
        if value not in CHOICES:
            raise VoteError(400, f"The answer to {question} must be one of left, right or tie.")
        answers[question] = value
    return comparison, answers


def cast_vote(db, token: str, comparison: int, answers: dict[str, str]) -> bool:
    """Store one rater's three answers on one comparison; False when the same vote was already stored."""
    with connect(db, write=True) as connection:
        rater = _rater(connection, token)
        row = connection.execute("SELECT rater_id FROM comparisons WHERE id=?", (comparison,)).fetchone()
        if row is None or row["rater_id"] != rater["id"]:
            raise VoteError(403, f"Comparison {comparison} is not assigned to this rater.")
        stored = connection.execute("SELECT * FROM votes WHERE comparison_id=?", (comparison,)).fetchone()
        if stored is not None:
            if all(stored[q.lower()] == answers[q] for q in QUESTIONS):
                return False  # a resent form (double click, reload): the vote is already there
            raise VoteError(409, f"Comparison {comparison} was already answered differently; the first vote stands.")
        connection.execute("INSERT INTO votes (comparison_id, obc, tar, ap, cast_at) VALUES (?,?,?,?,?)",
                           (comparison, answers["OBC"], answers["TAR"], answers["AP"], now()))
    return True
