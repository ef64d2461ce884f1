"""The study database: one SQLite file in WAL mode with a versioned schema.

WAL lets the rating pages read while a vote is being written, and a transaction committed
before a crash (even SIGKILL) is in the log and replayed on the next open. ``synchronous=FULL``
makes each commit durable against a power cut too, which costs one fsync per vote; at human
voting rates that is nothing. Every connection is short-lived (one per request), so no state
is shared between the server's worker threads.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path

from spf_bench.core.errors import SpfError

DB_NAME = "spf-study.sqlite"
SCHEMA_VERSION = 1
QUESTIONS = ("OBC", "TAR", "AP")
QUESTION_TEXT = {
    "OBC": "Which of the two images better preserves consistency with the original model's output?",
    "TAR": "Which image more accurately reflects the target text?",
    "AP": "Which image do you prefer, considering visual quality and the absence of artifacts or distortions?",
}
CHOICES = ("left", "right", "tie")
KINDS = ("pair", "gold-same", "gold-wrong")

SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE studies (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, against TEXT NOT NULL, methods TEXT NOT NULL,
    per_rater INTEGER NOT NULL, seed INTEGER NOT NULL, runs_dir TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE raters (
    id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL REFERENCES studies(id), token TEXT UNIQUE NOT NULL,
    label TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE comparisons (
    id INTEGER PRIMARY KEY, rater_id INTEGER NOT NULL REFERENCES raters(id), position INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ({", ".join(repr(k) for k in KINDS)})),
    triple_id TEXT NOT NULL, category TEXT NOT NULL, competitor TEXT NOT NULL,
    left_method TEXT NOT NULL, left_triple TEXT NOT NULL, right_method TEXT NOT NULL, right_triple TEXT NOT NULL,
    UNIQUE (rater_id, position));
CREATE TABLE votes (
    comparison_id INTEGER PRIMARY KEY REFERENCES comparisons(id),
    {", ".join(f"{q.lower()} TEXT NOT NULL CHECK ({q.lower()} IN ('left', 'right', 'tie'))" for q in QUESTIONS)},
    cast_at TEXT NOT NULL);
CREATE INDEX comparisons_by_rater ON comparisons (rater_id, position);
"""


def default_db(runs_dir: Path | str) -> Path:
    """The database lives beside the runs it is about."""
    return Path(runs_dir) / DB_NAME


def _open(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA synchronous = FULL")
    return connection


def ensure_schema(path: Path | str) -> Path:
    """Create the database on first use; refuse one of another schema version."""
    path = Path(path)
    if not path.parent.is_dir():
        raise SpfError(f"Cannot create the study database {path}: its folder does not exist.")
    connection = _open(path)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("BEGIN IMMEDIATE")
        has_meta = connection.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        if not has_meta:
            # one statement at a time: executescript would commit the open transaction first
            for statement in filter(str.strip, SCHEMA.split(";")):
                connection.execute(statement)
            connection.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        connection.execute("COMMIT")
        row = connection.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise SpfError(f"{path} is not a usable study database ({exc}).") from exc
    finally:
        connection.close()
    if row is None or int(row["value"]) != SCHEMA_VERSION:
        found = row["value"] if row else "none"
        raise SpfError(f"{path} has schema version {found}; this version of spf-bench reads version {SCHEMA_VERSION}.")
    return path


@contextmanager
def connect(path: Path | str, write: bool = False):
    """A connection for one unit of work; with ``write`` it holds one IMMEDIATE transaction."""
    connection = _open(Path(path))
    try:
        if write:
            connection.execute("BEGIN IMMEDIATE")
        yield connection
        if write:
            connection.execute("COMMIT")
    except BaseException:
        if write and connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    finally:
        connection.close()


def existing_db(path: Path | str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise SpfError(f"There is no study database at {path}; create one with 'spf-bench study create'.")
    return ensure_schema(path)


def study_row(connection: sqlite3.Connection, name: str | None) -> sqlite3.Row:
    """The study called ``name``, or the only one when no name is given."""
    rows = connection.execute("SELECT * FROM studies ORDER BY id").fetchall()
    if not rows:
        raise SpfError("The study database holds no study yet; create one with 'spf-bench study create'.")
    if name is None:
        if len(rows) > 1:
            raise SpfError(f"The database holds several studies ({', '.join(r['name'] for r in rows)}); name one with --study.")
        return rows[0]
    for row in rows:
        if row["name"] == name:
            return row
    raise SpfError(f"There is no study named '{name}'; the studies are {', '.join(r['name'] for r in rows)}.")
