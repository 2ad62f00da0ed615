"""The votes database: SQLite in WAL mode, so several raters' requests write at once and a vote is on disk
when its request returns.

Each comparison the server shows gets a random token, stored with what was shown (caption, the two models and
images, which side each was on). A vote is keyed by (token, question): sending it again, after a lost reply or
a double click, stores nothing new, so no vote is ever counted twice, and a restart loses nothing committed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from ..errors import GlideError

SCHEMA = """
CREATE TABLE IF NOT EXISTS comparisons (
    token TEXT PRIMARY KEY, rater TEXT NOT NULL, caption TEXT NOT NULL,
    model_a TEXT NOT NULL, model_b TEXT NOT NULL, image_a TEXT NOT NULL, image_b TEXT NOT NULL,
    left_model TEXT NOT NULL, questions TEXT NOT NULL, served_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS votes (
    token TEXT NOT NULL REFERENCES comparisons(token), question TEXT NOT NULL, rater TEXT NOT NULL,
    answer TEXT NOT NULL CHECK (answer IN ('left', 'right', 'skip')), winner TEXT, voted_at REAL NOT NULL,
    PRIMARY KEY (token, question));
"""


class VoteStore:
    """One connection per thread (sqlite3 connections are not shared between threads)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = self._con()
            mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            con.executescript(SCHEMA)
        except sqlite3.DatabaseError as e:
            raise GlideError(f"cannot use {self.path} as a votes database: {e}") from None
        if mode.lower() != "wal":
            raise GlideError(f"{self.path}: SQLite would not switch to WAL mode (got {mode})")

    def _con(self) -> sqlite3.Connection:
        con = getattr(self.local, "con", None)
        if con is None:
            # autocommit (isolation_level=None): each statement is its own transaction, committed at once;
            # busy_timeout: concurrent writers wait for each other instead of failing.
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            con.execute("PRAGMA busy_timeout=30000")
            con.execute("PRAGMA synchronous=FULL")
            self.local.con = con
        return con

    def serve(self, token: str, rater: str, caption: str, model_a: str, model_b: str, image_a: str, image_b: str,
              left_model: str, questions: list[str]) -> None:
        self._con().execute("INSERT INTO comparisons VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (token, rater, caption, model_a, model_b, image_a, image_b, left_model,
                             ",".join(questions), time.time()))

    def comparison(self, token: str) -> dict | None:
        cur = self._con().execute("SELECT * FROM comparisons WHERE token = ?", (token,))
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row)) if row else None

    def vote(self, token: str, question: str, rater: str, answer: str, winner: str | None) -> bool:
        """Store one answer; False if this (token, question) was already stored (nothing changes)."""
        cur = self._con().execute("INSERT OR IGNORE INTO votes VALUES (?, ?, ?, ?, ?, ?)",
                                  (token, question, rater, answer, winner, time.time()))
        return cur.rowcount == 1

    def votes(self) -> list[dict]:
        """Every vote joined with what was shown."""
        cur = self._con().execute(
            "SELECT v.token, v.question, v.rater, v.answer, v.winner, v.voted_at, c.caption, c.model_a, c.model_b, "
            "c.image_a, c.image_b, c.left_model FROM votes v JOIN comparisons c ON c.token = v.token "
            "ORDER BY v.voted_at")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def count(self, rater: str | None = None) -> int:
        if rater is None:
            return self._con().execute("SELECT COUNT(*) FROM votes").fetchone()[0]
        return self._con().execute("SELECT COUNT(*) FROM votes WHERE rater = ?", (rater,)).fetchone()[0]

    def close(self) -> None:
        con = getattr(self.local, "con", None)
        if con is not None:
            con.close()
            self.local.con = None


def open_existing(path: str | Path) -> VoteStore:
    if not Path(path).is_file():
        raise GlideError(f"votes database not found: {path}")
    return VoteStore(path)
