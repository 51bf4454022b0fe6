"""Where things live: which node owns a backend, a session or a job, read from the shared database.

Any node answers any request; what it does not serve itself it forwards to the node that holds
the backend's lease (`qmux._http`'s forwarding asks this directory). A session or job belongs to
one backend for ever, so its backend is cached once known; a backend's owner changes on a
takeover, so it is cached only for a short while (a tenth of the lease): a forward to an owner
that just died fails (503, tried again by the client) until the cache lets the next one ask again.

A backend whose lease has expired and not yet been taken over has no owner: asking about it
raises `ServiceClosedError` (503, retried by `qmux.connect`), never a 404 that a client would
take for "it does not exist".
"""

from __future__ import annotations

import functools
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Final, TypeVar, final

import trio

from .._core import ServiceClosedError
from ..journal._pgdb import Connection, Database

__all__ = ["Directory"]

T = TypeVar("T")

#: ids whose backend is remembered (a bounded LRU: ids are never reused, so entries never go stale)
_REMEMBERED_IDS: Final = 100_000

_OWNER = """
SELECT node, url, expires_at > now() FROM qmux_backend_leases WHERE backend = %s
"""
_SESSION_BACKEND = "SELECT backend FROM qmux_sessions WHERE id = %s"
_JOB_BACKEND = "SELECT backend FROM qmux_jobs WHERE id = %s"
_KEEP_KEY = "INSERT INTO qmux_cluster_keys (name, key) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING"
_KEY = "SELECT key FROM qmux_cluster_keys WHERE name = %s"
_LIVE_NODES = """
SELECT DISTINCT node, url FROM qmux_backend_leases WHERE expires_at > now() AND node <> %s AND url <> ''
"""


@final
class Directory:
    """The cluster as one node sees it: the other live nodes, and who owns what (``qmux._http.Peers``)."""

    def __init__(self, url: str, node: str, *, lease: float) -> None:
        self._node = node
        self._lease = lease
        self._others: tuple[dict[str, str], float] | None = None
        self._db = Database(url)
        self._owner_ttl = lease / 10
        #: backend -> (node, url or None when nobody holds it, monotonic time of the answer)
        self._owners: dict[str, tuple[str | None, str | None, float]] = {}
        self._backend_of: OrderedDict[str, str] = OrderedDict()
        self._limiter = trio.CapacityLimiter(1)  # the connection takes one query at a time anyway

    @property
    def node(self) -> str:
        return self._node

    @property
    def lease(self) -> float:
        return self._lease

    async def owner_of_backend(self, backend: str) -> str | None:
        """The base URL of the other node that owns `backend`; ``None`` if this node does, or if no
        node of the cluster has ever served it (then it is simply unknown)."""
        cached = self._owners.get(backend)
        if cached is None or time.monotonic() - cached[2] > self._owner_ttl:
            row = await self._run(lambda conn: conn.execute(_OWNER, (backend,)).fetchone())
            if row is None:
                return None
            node, url, live = row
            cached = (node, url, time.monotonic()) if live else (None, None, time.monotonic())
            self._owners[backend] = cached
        node, url, _ = cached
        if node is None:
            raise ServiceClosedError(
                f"backend {backend!r} is between nodes: its owner stopped renewing its lease and another "
                "node is taking it over; retry in a few seconds"
            )
        return None if node == self._node else url

    async def owner_of_session(self, session_id: str) -> str | None:
        backend = await self._backend(_SESSION_BACKEND, session_id)
        return None if backend is None else await self.owner_of_backend(backend)

    async def owner_of_job(self, job_id: str) -> str | None:
        backend = await self._backend(_JOB_BACKEND, job_id)
        return None if backend is None else await self.owner_of_backend(backend)

    async def others(self) -> Mapping[str, str]:
        """The other nodes that hold a lease now: name -> base URL (cached for a tenth of the lease:
        every fan-out asks)."""
        cached = self._others
        if cached is None or time.monotonic() - cached[1] > self._owner_ttl:
            rows = await self._run(lambda conn: conn.execute(_LIVE_NODES, (self._node,)).fetchall())
            cached = self._others = ({node: url for node, url in rows}, time.monotonic())
        return cached[0]

    def shared_key(self, name: str) -> bytes:
        """A 32-byte secret every node of the cluster shares under `name`, made by the first to ask.
        Blocking: call it off the event loop, or before it starts."""
        fresh = secrets.token_bytes(32)

        def read(conn: Connection) -> bytes:
            with conn.transaction():
                conn.execute(_KEEP_KEY, (name, fresh))
                row = conn.execute(_KEY, (name,)).fetchone()
            assert row is not None  # written just now, or before
            return bytes(row[0])

        return self._db.run(read, "read a cluster key in", retry=True)

    async def _backend(self, query: str, ident: str) -> str | None:
        backend = self._backend_of.get(ident)
        if backend is not None:
            self._backend_of.move_to_end(ident)
            return backend
        row = await self._run(lambda conn: conn.execute(query, (ident,)).fetchone())
        if row is None:
            return None
        backend = str(row[0])
        self._backend_of[ident] = backend
        if len(self._backend_of) > _REMEMBERED_IDS:
            self._backend_of.popitem(last=False)
        return backend

    async def _run(self, work: Callable[[Connection], T]) -> T:
        """`work` on the directory's own connection, in a worker thread (one at a time)."""
        return await trio.to_thread.run_sync(
            functools.partial(self._db.run, work, "look up the cluster in", retry=True), limiter=self._limiter
        )

    def close(self) -> None:
        self._db.close()
