"""qmux's PostgreSQL database: one connection, its schema's versions, and failures as `StorageError`.

The journal (`PostgresStore`) and the backend leases (`BackendLeases`) share it: one list of
migrations for every qmux table, applied on open under an advisory lock (processes starting
together migrate one at a time), recorded in ``qmux_schema``; a database written by a newer
qmux is refused. psycopg 3's sync API: callers run it off the event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, LiteralString, TypeVar, final

import psycopg
import structlog
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .._core import InvalidInputError, StorageError
from ._schema import pending_migrations

__all__ = ["CONNECT_TIMEOUT", "Connection", "Database", "describe_url"]

_log = structlog.get_logger("qmux")

T = TypeVar("T")
Connection = psycopg.Connection[tuple[Any, ...]]

#: seconds to wait for the server when connecting, unless the URL says otherwise
CONNECT_TIMEOUT = 10
#: pg_advisory_xact_lock key held while migrating
_MIGRATION_LOCK = 0x716D7578  # "qmux"

_MIGRATIONS: tuple[LiteralString, ...] = (
    # 1: the journal: sessions and jobs, each row placed by its first write (`seq`), indexed
    # for per-owner retention
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
    # 2: backend leases: which node owns a backend until when, and the epoch of its ownership
    # (rows are never deleted, so that epochs only grow)
    """
    CREATE TABLE qmux_backend_leases (
        backend text PRIMARY KEY,
        node text NOT NULL,
        epoch bigint NOT NULL,
        expires_at timestamptz NOT NULL
    );
    """,
    # 3: where each lease's node answers (its advertised URL), so that any node can forward a
    # request to the owner of what it names
    """
    ALTER TABLE qmux_backend_leases ADD COLUMN url text NOT NULL DEFAULT '';
    """,
    # 4: keys every node of a cluster shares (the IBM API's access tokens are signed with one, so
    # that a token one node issued is valid on all), made by the first node that needs each
    """
    CREATE TABLE qmux_cluster_keys (
        name text PRIMARY KEY,
        key bytea NOT NULL
    );
    """,
)

#: the schema version this code writes
SCHEMA_VERSION = len(_MIGRATIONS)


@final
class Database:
    """One connection to qmux's database, opened (and migrated) on construction, reopened when broken.

    `url` is a libpq URI (``postgresql://user@host:port/dbname``) or connection string; qmux's
    tables live in the connection's schema (its ``search_path``). Calls are serialised: psycopg
    connections are thread-safe, and a transaction must not interleave with another's.
    """

    def __init__(self, url: str) -> None:
        self.where = describe_url(url)
        self._conninfo = self.conninfo(url)
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._closed = False
        try:
            self._migrate(self._connection())
        except psycopg.Error as exc:
            self.close()
            raise StorageError(f"cannot open the journal {self.where}: {message(exc)}") from exc
        except StorageError:
            self.close()
            raise

    @staticmethod
    def conninfo(url: str) -> str:
        """`url` as the connection string qmux connects with (its own timeout, name and encoding)."""
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
        params.setdefault("client_encoding", "UTF8")  # text as str even from a SQL_ASCII database
        return make_conninfo("", **params)

    def _connection(self) -> Connection:
        if self._closed:  # a call abandoned in its thread, run after close: it must not reconnect
            raise StorageError(f"the journal {self.where} is closed")
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._conninfo, autocommit=True)
        return self._conn

    def _migrate(self, conn: Connection) -> None:
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

    def run(self, work: Callable[[Connection], T], verb: str, *, retry: bool) -> T:
        """`work` on the connection, or a `StorageError` saying what could not be done (`verb`).

        With `retry` (for idempotent work only), a connection found broken is opened again and
        `work` run once more: a server restart or a dropped connection costs no error.
        """
        with self._lock:
            for attempt in (1, 2):
                conn: Connection | None = None
                try:
                    conn = self._connection()
                    return work(conn)
                except psycopg.Error as exc:
                    # a dropped connection may surface as an OperationalError before psycopg marks it
                    # broken (the server's end of it is still closing): either way, once more, anew
                    lost = conn is not None and (conn.broken or isinstance(exc, psycopg.OperationalError))
                    if retry and attempt == 1 and conn is not None and lost:
                        _log.warning("journal.reconnecting", journal=self.where, error=message(exc))
                        conn.close()
                        continue
                    if conn is not None and conn.broken:
                        conn.close()  # the next call opens a new one
                    raise StorageError(f"cannot {verb} the journal {self.where}: {message(exc)}") from exc
                finally:
                    if self._closed and self._conn is not None:  # closed while this ran, abandoned
                        self._conn.close()
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._closed = True
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


def message(exc: psycopg.Error) -> str:
    """The first line of a psycopg error (its detail lines may quote rows)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
