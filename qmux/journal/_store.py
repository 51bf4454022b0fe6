"""The two stores qmux ships: SQLite (a journal file) and memory (tests).

A store writes batches of snapshots atomically and loads what it holds (the `JournalStore`
protocol of the core). It knows nothing of actors or Trio. `blocking` tells the journal whether
to call it from a worker thread.
"""

from __future__ import annotations

import operator
import os
import pickle
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import final

import attrs

from .._core import JobSnapshot, SessionSnapshot, StorageError

__all__ = ["MemoryStore", "SQLiteStore"]


@final
class MemoryStore:
    """Keeps rows in memory: what a journal file does, minus surviving the process."""

    blocking = False

    def __init__(self) -> None:
        self.sessions: dict[str, SessionSnapshot] = {}
        self.jobs: dict[str, JobSnapshot] = {}

    def write(self, sessions: Sequence[SessionSnapshot], jobs: Sequence[JobSnapshot]) -> None:
        self.sessions.update((row.session_id, row) for row in sessions)
        self.jobs.update((row.job_id, row) for row in jobs)

    def load(self, *, finished_jobs: int) -> tuple[list[SessionSnapshot], list[JobSnapshot]]:
        open_sessions = [row for row in self.sessions.values() if row.state != "closed"]
        unfinished = [row for row in self.jobs.values() if row.status in ("QUEUED", "RUNNING")]
        finished = [row for row in self.jobs.values() if row.status not in ("QUEUED", "RUNNING")]
        return open_sessions, unfinished + finished[-finished_jobs:]

    def close(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, state TEXT NOT NULL, row BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, finished INTEGER NOT NULL, row BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_seq ON jobs (finished, seq);
"""


@final
class SQLiteStore:
    """A journal file: SQLite in WAL mode, each batch one transaction, synced before it returns.

    Rows are pickled: the journal holds whatever a job's inputs and results are (circuits,
    arrays, qiskit results) and is read back only by qmux, from a file its own user owns.
    """

    blocking = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            (self._seq,) = self._db.execute("SELECT coalesce(max(seq), 0) FROM jobs").fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the journal {str(self.path)!r}: {exc}") from exc

    def write(self, sessions: Sequence[SessionSnapshot], jobs: Sequence[JobSnapshot]) -> None:
        try:
            session_rows = [(row.session_id, row.state, _dump(_SESSION_FIELDS(row))) for row in sessions]
            job_rows = []
            for row in jobs:
                self._seq += 1
                finished = int(row.status not in ("QUEUED", "RUNNING"))
                job_rows.append((row.job_id, self._seq, finished, _dump(_JOB_FIELDS(row))))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise StorageError(f"a job's inputs or result cannot be journaled: {exc}") from exc
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                for chunk in _chunks(session_rows):
                    self._db.execute(
                        f"INSERT OR REPLACE INTO sessions VALUES {_placeholders(len(chunk), 3)}", _flat(chunk)
                    )
                for chunk in _chunks(job_rows):
                    # the first seq of a job is kept, so that queued jobs come back in arrival order
                    self._db.execute(
                        f"INSERT INTO jobs VALUES {_placeholders(len(chunk), 4)} ON CONFLICT (id) DO UPDATE "
                        "SET finished = excluded.finished, row = excluded.row",
                        _flat(chunk),
                    )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot write the journal {str(self.path)!r}: {exc}") from exc

    def load(self, *, finished_jobs: int) -> tuple[list[SessionSnapshot], list[JobSnapshot]]:
        try:
            sessions = [
                SessionSnapshot(*pickle.loads(r))
                for (r,) in self._db.execute("SELECT row FROM sessions WHERE state != 'closed'")
            ]
            unfinished = self._db.execute("SELECT row FROM jobs WHERE finished = 0 ORDER BY seq").fetchall()
            finished = self._db.execute(
                "SELECT row FROM (SELECT row, seq FROM jobs WHERE finished = 1 ORDER BY seq DESC LIMIT ?) ORDER BY seq",
                (finished_jobs,),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read the journal {str(self.path)!r}: {exc}") from exc
        return sessions, [JobSnapshot(*pickle.loads(r)) for (r,) in [*unfinished, *finished]]

    def close(self) -> None:
        self._db.close()


# One statement per few hundred rows rather than one per row: Python's sqlite3 releases the GIL
# around every statement step, and each step's return then waits for the event loop's thread.
_ROWS_PER_STATEMENT = 500


def _chunks(rows: Sequence[tuple[object, ...]]) -> Iterator[Sequence[tuple[object, ...]]]:
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        yield rows[start : start + _ROWS_PER_STATEMENT]


def _placeholders(rows: int, columns: int) -> str:
    row = "(" + ", ".join("?" * columns) + ")"
    return ", ".join([row] * rows)


def _flat(rows: Sequence[tuple[object, ...]]) -> list[object]:
    return [value for row in rows for value in row]


# A row is stored as the tuple of its fields, in declaration order: pickling a plain tuple costs
# a fraction of pickling the attrs instance, and the journal writes one per changed job per batch.
_JOB_FIELDS = operator.attrgetter(*(field.name for field in attrs.fields(JobSnapshot)))
_SESSION_FIELDS = operator.attrgetter(*(field.name for field in attrs.fields(SessionSnapshot)))


def _dump(values: object) -> bytes:
    return pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL)
