"""The PostgreSQL store: the journal in a database that several processes (nodes) can share.

psycopg 3's sync API on one connection (`qmux.journal._pgdb`): the core calls `write` and `load`
in a worker thread (`blocking`), and psycopg's async API is asyncio-only. The promise is
SQLite's: a batch is one transaction, committed before `write` returns, so nothing is
acknowledged that is not committed. Each table takes a batch in one statement (``INSERT ...
SELECT FROM unnest(arrays) ... ON CONFLICT DO UPDATE``): one round trip whatever its size.

A broken connection (the server restarted, a proxy dropped it) is opened again once and the
batch retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, final

from .._core import JobSnapshot, SessionSnapshot
from ._pgdb import Connection, Database
from ._rows import dump_job, dump_session, is_closed, is_finished, load_job, load_session

if TYPE_CHECKING:
    from ._leases import BackendLeases

__all__ = ["PostgresStore"]

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


def _load_query(table: str, ended: str) -> str:
    """What `load` reads of `table`: every row not `ended`, and each owner's ``keep`` newest ended
    ones (NULL owners are one owner: window partitions group NULLs together), all in first-write
    order; with ``backends`` (an array, or NULL for all), only their rows."""
    mine = "(%(backends)s::text[] IS NULL OR backend = ANY(%(backends)s))"
    return f"""
SELECT row FROM (
    SELECT row, seq FROM {table} WHERE NOT {ended} AND {mine}
    UNION ALL
    SELECT row, seq FROM (
        SELECT row, seq, row_number() OVER (PARTITION BY owner ORDER BY seq DESC) AS newest
        FROM {table} WHERE {ended} AND {mine}
    ) AS ended WHERE newest <= %(keep)s
) AS kept ORDER BY seq
"""


_LOAD_SESSIONS = _load_query("qmux_sessions", "closed")
_LOAD_JOBS = _load_query("qmux_jobs", "finished")


@final
class PostgresStore:
    """A journal in a PostgreSQL database: each batch one transaction, committed before it returns.

    `url` is a libpq URI (``postgresql://user@host:port/dbname``) or connection string; the
    tables are made in the connection's schema (its ``search_path``) and migrated on open.

    With a `fence` (a node's `BackendLeases`), the store writes only for backends whose lease
    the node holds at the epoch it acquired: checked in the batch's own transaction, so a node
    that lost a lease (it expired and another node took the backend) cannot write a row once
    the new owner could have read them.
    """

    blocking = True

    def __init__(self, url: str, *, fence: BackendLeases | None = None) -> None:
        self._db = Database(url)
        self.where = self._db.where
        self.fence = fence

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
        fence = self.fence
        backends = {*session_columns[1], *job_columns[1]}

        def write(conn: Connection) -> None:
            with conn.transaction():
                if fence is not None:
                    fence.check(conn, backends)
                if session_rows:
                    conn.execute(_WRITE_SESSIONS, session_columns)
                if job_rows:
                    conn.execute(_WRITE_JOBS, job_columns)

        # a batch replaces snapshots by id and keeps every row's first place: writing it twice
        # is writing it once, so a broken connection is retried
        self._db.run(write, "write", retry=True)

    def load(
        self, *, retain_finished: int, backends: Sequence[str] | None = None
    ) -> tuple[list[SessionSnapshot], list[JobSnapshot]]:
        """`JournalStore.load`; with `backends`, only their rows (a node taking some over)."""
        params = {"keep": retain_finished, "backends": None if backends is None else list(backends)}

        def load(conn: Connection) -> tuple[list[Any], list[Any]]:
            with conn.transaction(), conn.cursor(binary=True) as cursor:
                # one snapshot of the database for both tables, as of the first query
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                sessions = cursor.execute(_LOAD_SESSIONS, params).fetchall()
                jobs = cursor.execute(_LOAD_JOBS, params).fetchall()
                return sessions, jobs

        sessions, jobs = self._db.run(load, "read", retry=True)
        return [load_session(row) for (row,) in sessions], [load_job(row) for (row,) in jobs]

    def close(self) -> None:
        self._db.close()
