"""Backend leases: which node owns a backend, until when, and since which takeover (the epoch).

Several qmux nodes share one PostgreSQL database; each backend is owned by at most one live node
through a row of ``qmux_backend_leases``: ``(backend, node, epoch, expires_at)``. A node
acquires a backend only when its lease is free (released) or expired, renews it while it serves
it, and releases it on a graceful stop so that another node need not wait for expiry. Every
acquisition increments the backend's epoch; a renewal keeps it. Rows are never deleted, so an
epoch never comes back.

Time is the database's (``now()``), one clock for every node. A node must also stop serving a
backend by its own clock before the database could expire the lease: `Lease.good_until` is a
`time.monotonic()` deadline taken *before* the request that set the expiry, so it falls before
the expiry the database recorded.

Fencing: a `PostgresStore` given these leases (``fence=``) checks, inside each batch's own
transaction, that the node still holds every backend the batch touches at the epoch it
acquired, and holds those lease rows (``FOR SHARE``) until it commits. A takeover (an UPDATE of
the row) therefore waits for a write in flight, and a write after a takeover finds a newer
epoch and fails with `StorageError`: a stale owner that comes back cannot write.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Collection, Mapping
from typing import Any, final

import psycopg
from attrs import frozen

from .._core import InvalidInputError, StorageError, check_id
from ._pgdb import Connection, Database

__all__ = ["RELEASED_CHANNEL", "BackendLeases", "Lease", "ReleaseListener"]


@frozen
class Lease:
    """One node's ownership of one backend."""

    backend: str
    node: str
    #: how many times the backend has been acquired (by any node), this acquisition included
    epoch: int
    #: the database's expiry of the lease
    expires_at: dt.datetime
    #: ``time.monotonic()`` by which this node must stop serving the backend (before `expires_at`)
    good_until: float


# Acquire: a new row at epoch 1, or take over a free or expired one with the next epoch.
_ACQUIRE = """
INSERT INTO qmux_backend_leases AS lease (backend, node, epoch, expires_at, url)
VALUES (%(backend)s, %(node)s, 1, now() + make_interval(secs => %(ttl)s), %(url)s)
ON CONFLICT (backend) DO UPDATE
    SET node = excluded.node, epoch = lease.epoch + 1, expires_at = excluded.expires_at, url = excluded.url
    WHERE lease.expires_at <= now()
RETURNING epoch, expires_at
"""
# Renew: only by its owner, at its epoch, before it expires (a lapsed lease is lost: acquire again)
_RENEW = """
UPDATE qmux_backend_leases SET expires_at = now() + make_interval(secs => %(ttl)s)
WHERE backend = %(backend)s AND node = %(node)s AND epoch = %(epoch)s AND expires_at > now()
RETURNING expires_at
"""
# Release: expire it now, keeping the row (and its epoch) for the next owner, and tell the
# listening nodes (LISTEN qmux_leases) so that one takes it over at once
_RELEASE = """
UPDATE qmux_backend_leases SET expires_at = now()
WHERE backend = %(backend)s AND node = %(node)s AND epoch = %(epoch)s AND expires_at > now()
"""
#: the channel a released lease is announced on (its payload: the backend's name)
RELEASED_CHANNEL = "qmux_leases"
_HOLDER = "SELECT node, epoch, expires_at > now() FROM qmux_backend_leases WHERE backend = %s"
# The fence: the lease rows a batch relies on, still this node's at these epochs, locked until commit
_FENCE = """
SELECT lease.backend FROM qmux_backend_leases AS lease
JOIN unnest(%(backends)s::text[], %(epochs)s::bigint[]) AS mine (backend, epoch)
    ON lease.backend = mine.backend AND lease.epoch = mine.epoch
WHERE lease.node = %(node)s
FOR SHARE OF lease
"""


@final
class BackendLeases:
    """The leases one node holds, in qmux's PostgreSQL database; also a `PostgresStore`'s fence.

    `ttl` is the lease's length in seconds; a node renews well within it (a third, say). Every
    call does I/O: run it off the event loop. Failures to reach the database are `StorageError`;
    losing a race (the backend is someone else's, or the lease lapsed) is a ``None`` result.
    """

    def __init__(self, url: str, node: str, *, ttl: float, advertise_url: str = "") -> None:
        self.node = check_id(node, name="node")
        #: where this node answers: written with each lease, so other nodes can forward to it
        self.advertise_url = advertise_url
        if not ttl > 0:
            raise InvalidInputError(f"ttl={ttl!r} is not a lease length; it is a number of seconds above 0")
        self.ttl = float(ttl)
        self._db = Database(url)
        #: what this node believes it holds: backend -> epoch (the fence checks it against the rows)
        self._held: dict[str, int] = {}

    def acquire(self, backend: str) -> Lease | None:
        """Take `backend` if its lease is free or expired (a takeover: the next epoch), else ``None``."""
        start = time.monotonic()
        params = {"backend": backend, "node": self.node, "ttl": self.ttl, "url": self.advertise_url}
        # not retried on a broken connection: the first attempt may have taken the lease already,
        # and a second would find it held; the caller tries again after the lease could expire
        row = self._db.run(lambda conn: conn.execute(_ACQUIRE, params).fetchone(), "acquire a lease in", retry=False)
        if row is None:
            return None
        epoch, expires_at = row
        self._held[backend] = epoch
        return Lease(backend, self.node, epoch, expires_at, start + self.ttl)

    def renew(self, lease: Lease) -> Lease | None:
        """Extend `lease` by `ttl` from now; ``None`` if it is no longer this node's (it lapsed or was taken)."""
        start = time.monotonic()
        params = {"backend": lease.backend, "node": self.node, "epoch": lease.epoch, "ttl": self.ttl}
        row = self._db.run(lambda conn: conn.execute(_RENEW, params).fetchone(), "renew a lease in", retry=True)
        if row is None:
            self._held.pop(lease.backend, None)
            return None
        return Lease(lease.backend, self.node, lease.epoch, row[0], start + self.ttl)

    def release(self, lease: Lease) -> None:
        """Give `lease` up now, so that another node can take the backend without waiting for expiry."""
        self._held.pop(lease.backend, None)
        params = {"backend": lease.backend, "node": self.node, "epoch": lease.epoch}

        def release(conn: Connection) -> None:
            with conn.transaction():
                conn.execute(_RELEASE, params)
                conn.execute("SELECT pg_notify(%s, %s)", (RELEASED_CHANNEL, lease.backend))

        self._db.run(release, "release a lease in", retry=True)

    def holder(self, backend: str) -> tuple[str, int] | None:
        """Which node holds `backend` now, at which epoch, by the database (``None``: no live lease)."""
        row = self._db.run(lambda conn: conn.execute(_HOLDER, (backend,)).fetchone(), "read a lease in", retry=True)
        if row is None or not row[2]:
            return None
        node, epoch, _ = row
        return node, epoch

    def epochs(self) -> Mapping[str, int]:
        """The backends this node believes it holds, each with the epoch it acquired."""
        return dict(self._held)

    def check(self, conn: Connection, backends: Collection[str]) -> None:
        """The fence, inside a writer's transaction on `conn`: this node holds every backend of
        `backends` at the epoch it acquired, and those rows stay locked until the writer commits."""
        if not backends:
            return
        held = dict(self._held)  # a stable copy: leases are acquired and released from other threads
        missing = sorted(backend for backend in backends if backend not in held)
        if missing:
            raise StorageError(
                f"node {self.node!r} holds no lease on {', '.join(missing)}: nothing of this batch was written"
            )
        ordered = sorted(backends)
        params = {"backends": ordered, "epochs": [held[b] for b in ordered], "node": self.node}
        confirmed = {backend for (backend,) in conn.execute(_FENCE, params).fetchall()}
        lost = [backend for backend in ordered if backend not in confirmed]
        if lost:
            raise StorageError(
                f"node {self.node!r} lost its lease on {', '.join(lost)} (another node took it over: its "
                "epoch is newer): nothing of this batch was written"
            )

    def close(self) -> None:
        self._db.close()


@final
class ReleaseListener:
    """Hears leases being released (``LISTEN qmux_leases``), so that a node takes a backend over at
    once instead of at its next poll. Its own connection; any failure makes it a plain sleep (the
    poll is the fallback), and it connects again on the next wait."""

    def __init__(self, url: str) -> None:
        self._conninfo = Database.conninfo(url)
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._closed = False

    def wait(self, timeout: float) -> bool:
        """Block until a lease is released or `timeout` seconds pass; whether one was."""
        deadline = time.monotonic() + timeout
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._conninfo, autocommit=True)
                self._conn.execute(f"LISTEN {RELEASED_CHANNEL}")
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                return True
            return False
        except psycopg.Error:
            if self._conn is not None:
                self._conn.close()
            time.sleep(max(0.0, deadline - time.monotonic()))
            return False
        finally:
            if self._closed:  # closed while this wait ran in a thread its caller abandoned
                self.close()

    def close(self) -> None:
        self._closed = True
        if self._conn is not None:
            self._conn.close()
