"""The SQLite store: a journal file, for one qmux process.

Each batch is one transaction, synced (WAL, ``synchronous=FULL``) before `write` returns. The
schema is versioned (`qmux.journal._schema`): version 1 is the layout of the first journal files,
version 2 adds what per-owner retention and the order of sessions need.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import final

from .._core import JobSnapshot, SessionSnapshot, StorageError
from ._rows import CLOSED, dump_job, dump_session, is_finished, load_job, load_session
from ._schema import pending_migrations

__all__ = ["SQLiteStore"]


@final
class SQLiteStore:
    """A journal file: SQLite in WAL mode, each batch one transaction, synced before it returns."""

    blocking = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._where = repr(str(self.path))
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the journal {self._where}: {exc}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
            #: the next row's place: a row's first write fixes it, so rows come back in arrival order
            self._seq: int = self._db.execute(
                "SELECT max((SELECT coalesce(max(seq), 0) FROM jobs), (SELECT coalesce(max(seq), 0) FROM sessions))"
            ).fetchone()[0]
        except sqlite3.Error as exc:
            self._db.close()
            raise StorageError(f"cannot open the journal {self._where}: {exc}") from exc
        except StorageError:
            self._db.close()
            raise

    def _migrate(self) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS qmux_schema (version INTEGER PRIMARY KEY, "
                "applied_at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0))"  # POSIX seconds
            )
            (found,) = self._db.execute("SELECT coalesce(max(version), 0) FROM qmux_schema").fetchone()
            for version, migration in pending_migrations(found, _MIGRATIONS, self._where):
                migration(self._db)
                self._db.execute("INSERT INTO qmux_schema (version) VALUES (?)", (version,))

    def write(self, sessions: Sequence[SessionSnapshot], jobs: Sequence[JobSnapshot]) -> None:
        session_rows = []
        for session in sessions:
            self._seq += 1
            session_rows.append((session.session_id, self._seq, session.state, session.owner, dump_session(session)))
        job_rows = []
        for job in jobs:
            self._seq += 1
            job_rows.append((job.job_id, self._seq, int(is_finished(job)), job.owner, dump_job(job)))
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                # on conflict the first seq is kept: a row's first write fixes its place
                for chunk in _chunks(session_rows):
                    self._db.execute(
                        f"INSERT INTO sessions (id, seq, state, owner, row) VALUES {_placeholders(len(chunk), 5)} "
                        "ON CONFLICT (id) DO UPDATE "
                        "SET state = excluded.state, owner = excluded.owner, row = excluded.row",
                        _flat(chunk),
                    )
                for chunk in _chunks(job_rows):
                    self._db.execute(
                        f"INSERT INTO jobs (id, seq, finished, owner, row) VALUES {_placeholders(len(chunk), 5)} "
                        "ON CONFLICT (id) DO UPDATE "
                        "SET finished = excluded.finished, owner = excluded.owner, row = excluded.row",
                        _flat(chunk),
                    )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot write the journal {self._where}: {exc}") from exc

    def load(self, *, retain_finished: int) -> tuple[list[SessionSnapshot], list[JobSnapshot]]:
        try:
            with self._db:
                self._db.execute("BEGIN")  # one snapshot of the file for both tables
                sessions = self._db.execute(_LOAD_SESSIONS, {"closed": CLOSED, "keep": retain_finished}).fetchall()
                jobs = self._db.execute(_LOAD_JOBS, {"keep": retain_finished}).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read the journal {self._where}: {exc}") from exc
        return [load_session(row) for (row,) in sessions], [load_job(row) for (row,) in jobs]

    def close(self) -> None:
        self._db.close()


# Every row not ended, and each owner's `keep` newest ended rows (NULL owners are one owner:
# window partitions group NULLs together), all in first-write order.
_LOAD_SESSIONS = """
SELECT row FROM (
    SELECT row, seq FROM sessions WHERE state != :closed
    UNION ALL
    SELECT row, seq FROM (
        SELECT row, seq, row_number() OVER (PARTITION BY owner ORDER BY seq DESC) AS newest
        FROM sessions WHERE state = :closed
    ) WHERE newest <= :keep
) ORDER BY seq
"""
_LOAD_JOBS = """
SELECT row FROM (
    SELECT row, seq FROM jobs WHERE finished = 0
    UNION ALL
    SELECT row, seq FROM (
        SELECT row, seq, row_number() OVER (PARTITION BY owner ORDER BY seq DESC) AS newest
        FROM jobs WHERE finished = 1
    ) WHERE newest <= :keep
) ORDER BY seq
"""


def _tables_v1(db: sqlite3.Connection) -> None:
    """The first journal files' layout; a no-op on such a file (it has no ``qmux_schema`` yet)."""
    db.execute("CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, state TEXT NOT NULL, row BLOB NOT NULL)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS jobs "
        "(id TEXT PRIMARY KEY, seq INTEGER NOT NULL, finished INTEGER NOT NULL, row BLOB NOT NULL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS jobs_by_seq ON jobs (finished, seq)")


def _owners_and_session_order_v2(db: sqlite3.Connection) -> None:
    """Owners as columns (retention is per owner) and a first-write place for sessions too."""
    db.execute("ALTER TABLE sessions ADD COLUMN seq INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE sessions ADD COLUMN owner TEXT")
    db.execute("ALTER TABLE jobs ADD COLUMN owner TEXT")
    # version 1 replaced a session's row on every write, so its rowid is its last write: the
    # nearest to an arrival order that such a file holds
    db.execute("UPDATE sessions SET seq = rowid")
    db.executemany(
        "UPDATE sessions SET owner = ? WHERE id = ?",
        [(load_session(row).owner, key) for key, row in db.execute("SELECT id, row FROM sessions")],
    )
    db.executemany(
        "UPDATE jobs SET owner = ? WHERE id = ?",
        [(load_job(row).owner, key) for key, row in db.execute("SELECT id, row FROM jobs")],
    )
    db.execute("DROP INDEX jobs_by_seq")
    db.execute("CREATE INDEX jobs_retained ON jobs (finished, owner, seq)")
    db.execute("CREATE INDEX sessions_retained ON sessions (state, owner, seq)")


_MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_tables_v1, _owners_and_session_order_v2)


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
