"""The PostgreSQL store: the journal in a database that several processes (later, nodes) can share.

psycopg 3's sync API on one connection: the core calls `write` and `load` in a worker thread
(`blocking`), and psycopg's async API is asyncio-only. The promise is SQLite's: a batch is one
transaction, committed before `write` returns, so nothing is acknowledged that is not committed.
Each table takes a batch in one statement (``INSERT ... SELECT FROM unnest(arrays) ... ON
CONFLICT DO UPDATE``): one round trip whatever the batch's size.

A broken connection (the server restarted, a proxy dropped it) is opened again once and the
batch retried: a batch replaces snapshots by id and keeps every row's first place, so applying
it twice is the same as once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, LiteralString, TypeVar, final

import psycopg
import structlog
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .._core import InvalidInputError, JobSnapshot, SessionSnapshot, StorageError
from ._rows import dump_job, dump_session, is_closed, is_finished, load_job, load_session
from ._schema import pending_migrations

__all__ = ["PostgresStore", "describe_url"]

_log = structlog.get_logger("qmux")

T = TypeVar("T")

#: seconds to wait for the server when connecting, unless the URL says otherwise
CONNECT_TIMEOUT = 10
#: pg_advisory_xact_lock key held while migrating: processes starting together migrate one at a time
_MIGRATION_LOCK = 0x716D7578  # "qmux"

_MIGRATIONS: tuple[LiteralString, ...] = (
    # 1: sessions and jobs, each row placed by its first write (`seq`), indexed for retention
    """
    CREATE TABLE qmux_sessions (
        id text PRIMARY KEY,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        backend text NOT NULL,
        closed boolean NOT NULL,
        owner text,
        row bytea NOT NULL
    );
    CREATE TABLE qmux_jobs (
        id text PRIMARY KEY,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        backend text NOT NULL,
        finished boolean NOT NULL,
        owner text,
        row bytea NOT NULL
    );
    CREATE INDEX qmux_sessions_retained ON qmux_sessions (closed, owner, seq);
    CREATE INDEX qmux_jobs_retained ON qmux_jobs (finished, owner, seq);
    """,
)

# One statement per table per batch. Rows enter in the order given (WITH ORDINALITY), so that
# new ones take their `seq` in that order; on conflict the row keeps its first `seq`.
_WRITE_SESSIONS = """
INSERT INTO qmux_sessions (id, backend, closed, owner, row)
SELECT id, backend, closed, owner, row
FROM unnest(%s::text[], %s::text[], %s::boolean[], %s::text[], %b::bytea[])
    WITH ORDINALITY AS batch (id, backend, closed, owner, row, place)
ORDER BY place
ON CONFLICT (id) DO UPDATE SET closed = excluded.closed, owner = excluded.owner, row = excluded.row
"""
_WRITE_JOBS = """
INSERT INTO qmux_jobs (id, backend, finished, owner, row)
SELECT id, backend, finished, owner, row
FROM unnest(%s::text[], %s::text[], %s::boolean[], %s::text[], %b::bytea[])
    WITH ORDINALITY AS batch (id, backend, finished, owner, row, place)
ORDER BY place
ON CONFLICT (id) DO UPDATE SET finished = excluded.finished, owner = excluded.owner, row = excluded.row
"""
# Every row not ended, and each owner's `keep` newest ended ones (NULL owners are one owner:
# window partitions group NULLs together), all in first-write order.
_LOAD_SESSIONS = """
SELECT row FROM (
    SELECT row, seq FROM qmux_sessions WHERE NOT closed
    UNION ALL
    SELECT row, seq FROM (
        SELECT row, seq, row_number() OVER (PARTITION BY owner ORDER BY seq DESC) AS newest
        FROM qmux_sessions WHERE closed
    ) AS ended WHERE newest <= %(keep)s
) AS kept ORDER BY seq
"""
_LOAD_JOBS = """
SELECT row FROM (
    SELECT row, seq FROM qmux_jobs WHERE NOT finished
    UNION ALL
    SELECT row, seq FROM (
        SELECT row, seq, row_number() OVER (PARTITION BY owner ORDER BY seq DESC) AS newest
        FROM qmux_jobs WHERE finished
    ) AS ended WHERE newest <= %(keep)s
) AS kept ORDER BY seq
"""


@final
class PostgresStore:
    """A journal in a PostgreSQL database: each batch one transaction, committed before it returns.

    `url` is a libpq connection string or URI (``postgresql://user@host:port/dbname``); the
    tables are made in the connection's schema (its ``search_path``) and migrated on open.
    """

    blocking = True

    def __init__(self, url: str) -> None:
        self.where = describe_url(url)
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            # psycopg's reason quotes the string, password included: say what is allowed instead
            raise InvalidInputError(
                "the PostgreSQL journal's URL cannot be read: it is 'postgresql://user@host:port/dbname' "
                "(special characters percent-encoded, options as known libpq parameters) or a libpq "
                "connection string ('host=... dbname=...')"
            ) from None
        params.setdefault("connect_timeout", CONNECT_TIMEOUT)
        params.setdefault("application_name", "qmux")
        self._conninfo = make_conninfo("", **params)
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        try:
            self._migrate(self._connection())
        except psycopg.Error as exc:
            self.close()
            raise StorageError(f"cannot open the journal {self.where}: {_message(exc)}") from exc
        except StorageError:
            self.close()
            raise

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._conninfo, autocommit=True)
        return self._conn

    def _migrate(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS qmux_schema "
                "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            row = conn.execute("SELECT coalesce(max(version), 0) FROM qmux_schema").fetchone()
            found = row[0] if row else 0
            for version, migration in pending_migrations(found, _MIGRATIONS, self.where):
                conn.execute(migration)
                conn.execute("INSERT INTO qmux_schema (version) VALUES (%s)", (version,))
                _log.info("journal.migrated", journal=self.where, version=version)

    def write(self, sessions: Sequence[SessionSnapshot], jobs: Sequence[JobSnapshot]) -> None:
        # one row per id (a statement may not touch a row twice): the last snapshot, the first place
        session_rows = {row.session_id: row for row in sessions}.values()
        job_rows = {row.job_id: row for row in jobs}.values()
        session_columns = (
            [row.session_id for row in session_rows],
            [row.backend for row in session_rows],
            [is_closed(row) for row in session_rows],
            [row.owner for row in session_rows],
            [dump_session(row) for row in session_rows],
        )
        job_columns = (
            [row.job_id for row in job_rows],
            [row.backend for row in job_rows],
            [is_finished(row) for row in job_rows],
            [row.owner for row in job_rows],
            [dump_job(row) for row in job_rows],
        )

        def write(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
            with conn.transaction():
                if session_rows:
                    conn.execute(_WRITE_SESSIONS, session_columns)
                if job_rows:
                    conn.execute(_WRITE_JOBS, job_columns)

        self._run(write, "write")

    def load(self, *, retain_finished: int) -> tuple[list[SessionSnapshot], list[JobSnapshot]]:
        def load(conn: psycopg.Connection[tuple[Any, ...]]) -> tuple[list[Any], list[Any]]:
            with conn.transaction(), conn.cursor(binary=True) as cursor:
                # one snapshot of the database for both tables, as of the first query
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                sessions = cursor.execute(_LOAD_SESSIONS, {"keep": retain_finished}).fetchall()
                jobs = cursor.execute(_LOAD_JOBS, {"keep": retain_finished}).fetchall()
                return sessions, jobs

        sessions, jobs = self._run(load, "read")
        return [load_session(row) for (row,) in sessions], [load_job(row) for (row,) in jobs]

    def _run(self, work: Callable[[psycopg.Connection[tuple[Any, ...]]], T], verb: str) -> T:
        """`work` on the connection; once more on a new one if the connection broke; else a StorageError."""
        with self._lock:
            for attempt in (1, 2):
                conn: psycopg.Connection[tuple[Any, ...]] | None = None
                try:
                    conn = self._connection()
                    return work(conn)
                except psycopg.Error as exc:
                    if attempt == 1 and conn is not None and conn.broken:
                        _log.warning("journal.reconnecting", journal=self.where, error=_message(exc))
                        conn.close()
                        continue
                    raise StorageError(f"cannot {verb} the journal {self.where}: {_message(exc)}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def describe_url(url: str) -> str:
    """Where a connection string points, without its password: ``postgresql://user@host:port/db``."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql (a connection string that cannot be parsed)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host') or 'localhost'}{port}/{parts.get('dbname') or ''}"


def _message(exc: psycopg.Error) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
