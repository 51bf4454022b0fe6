"""A node: one `qmux serve` process of several sharing a PostgreSQL journal, owning backends by lease.

Ownership. Each backend is owned by at most one live node through its lease row
(`qmux.journal.BackendLeases`). A node starts its service with no backend and takes each free one
over (`Service.adopt`): it acquires the lease, then loads that backend's sessions and jobs and
recovers them as a restart would (SPEC J4). It renews what it holds every third of the lease, and
watches for backends to take over: released ones at once (``LISTEN``), expired ones when it next
looks (a poll of a quarter of the lease, at most a second). A node prefers the backends its
``prefer`` names: it takes the others only once they have been free for a third of the lease.

Fencing. The service writes through the shared store with this node's leases as its fence: a
batch touching a backend whose lease this node no longer holds at its epoch is refused in its own
transaction, so a stale owner cannot write once the new one has read.

Losing a lease. If a renewal finds the lease gone, or cannot be made before the lease could
expire (the database is unreachable: a partition), the node stops, crash-only: its journal is
sealed at once (nothing more is written), its work is cancelled, and `Node.run` raises
`LeaseLostError`, which ends ``qmux serve`` (exit status 3) for its supervisor to start it again.
It stops a tenth of the lease before the lease could expire by its own clock, so that it has
stopped serving before another node may take over.

A graceful stop hands over: no backend is taken any more, running jobs get the shutdown grace
and are recorded, nothing else is written, and every lease is released (``NOTIFY``), so that
the other nodes take the backends over at once instead of after expiry.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Final, NoReturn, final

import structlog
import trio

from .._core import (
    Backend,
    InvalidInputError,
    JobSnapshot,
    JournalStore,
    Service,
    ServiceClosedError,
    ServiceSettings,
    SessionSnapshot,
    StorageError,
    run_service,
)
from ..journal._leases import BackendLeases, Lease, ReleaseListener
from ..journal._postgres import PostgresStore
from ._directory import Directory
from ._errors import LeaseLostError, lease_lost_in
from ._settings import ClusterSettings

__all__ = ["Node", "NodeStore", "open_node"]

_log = structlog.get_logger("qmux.cluster")
#: how much before its lease could expire a node that cannot renew stops, as a share of the lease
_STOP_MARGIN: Final = 0.1
#: the longest a node goes without looking for backends to take over
_MAX_POLL: Final = 1.0


@final
class NodeStore:
    """The journal a node's service writes through: the shared store, fenced by the node's leases.

    Its `load` returns nothing: a node's service starts with no backend, and the node loads a
    backend's rows when it takes that backend over (`load_backend`).
    """

    blocking = True

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def write(self, sessions: Sequence[SessionSnapshot], jobs: Sequence[JobSnapshot]) -> None:
        self.store.write(sessions, jobs)

    def load(self, *, retain_finished: int) -> tuple[list[SessionSnapshot], list[JobSnapshot]]:
        return [], []

    def load_backend(self, backend: str, *, retain_finished: int) -> tuple[list[SessionSnapshot], list[JobSnapshot]]:
        return self.store.load(retain_finished=retain_finished, backends=[backend])

    def close(self) -> None:
        self.store.close()


@final
class Node:
    """This process as a node of the cluster: its leases, its view of the others, its fenced journal."""

    def __init__(
        self,
        settings: ClusterSettings,
        url: str,
        backends: Sequence[Backend],
        *,
        retain_finished: int,
        on_lost: Callable[[], object] | None = None,
    ) -> None:
        self.settings = settings
        #: called the moment a lease is lost, before the node's orderly stop (which a database
        #: that hangs may hold up): ``qmux serve`` arms a deadline on the process with it
        self.on_lost = on_lost
        self._backends = {backend.name: backend for backend in backends}
        unknown = sorted(set(settings.prefer) - set(self._backends))
        if unknown:
            raise InvalidInputError(
                f"[cluster] prefer names {', '.join(map(repr, unknown))}, which this node does not configure; "
                f"its backends are {', '.join(sorted(self._backends))}"
            )
        self._retain = retain_finished
        self.leases = BackendLeases(url, settings.node, ttl=settings.lease, advertise_url=settings.advertise_url)
        self.store = NodeStore(PostgresStore(url, fence=self.leases))
        self.directory = Directory(url, settings.node, lease=settings.lease)
        self._listener = ReleaseListener(url)
        self._held: dict[str, Lease] = {}
        #: when this node first saw each backend free (it waits before taking one it does not prefer)
        self._free_since: dict[str, float] = {}
        self._taking = True
        self._poll = min(_MAX_POLL, settings.lease / 4)
        #: how long a backend this node does not prefer stays free before this node takes it
        self._patience = settings.lease / 3

    @property
    def name(self) -> str:
        return self.settings.node

    def held(self) -> list[str]:
        """The backends this node serves now."""
        return sorted(self._held)

    async def run(self, service: Service, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own backends for `service` until cancelled: take the free ones (once before `started`),
        renew, take over. Raises `LeaseLostError` (after sealing `service`'s journal) when a lease
        is lost. Backends with a lifecycle are entered when taken, left when this returns."""
        async with AsyncExitStack() as entered:
            for backend in self._backends.values():
                service.know(backend)  # described by every node; served by its owner
            await self._take_free(service, entered)
            _log.info("cluster.node_started", node=self.name, backends=self.held())
            task_status.started()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._keep, service)
                while True:
                    wait = min([self._poll, *(at - trio.current_time() for at in self._eligible_at())])
                    await trio.to_thread.run_sync(self._listener.wait, max(0.0, wait), abandon_on_cancel=True)
                    await self._take_free(service, entered)

    def stop_taking(self) -> None:
        """Take no more backends (a graceful stop has begun)."""
        self._taking = False

    async def release_all(self) -> None:
        """Give every lease up now (after the service handed over), so others take the backends at
        once; bounded by a lease (a database that does not answer: they expire by themselves)."""
        held, self._held = sorted(self._held.items()), {}
        with trio.move_on_after(self.settings.lease):
            for name, lease in held:
                try:
                    await trio.to_thread.run_sync(self.leases.release, lease, abandon_on_cancel=True)
                    _log.info("cluster.backend_released", node=self.name, backend=name, epoch=lease.epoch)
                except StorageError as exc:
                    _log.warning("cluster.release_failed", node=self.name, backend=name, error=str(exc))

    def close(self) -> None:
        self.leases.close()
        self.directory.close()
        self._listener.close()

    # -- taking backends over --------------------------------------------------------------------

    async def _take_free(self, service: Service, entered: AsyncExitStack) -> None:
        for name in sorted(self._backends):
            if name in self._held or not self._taking:
                continue
            if not self._prefers(name):
                holder = await trio.to_thread.run_sync(self.leases.holder, name)
                if holder is not None:
                    self._free_since.pop(name, None)
                    continue
                first_seen = self._free_since.setdefault(name, trio.current_time())
                if trio.current_time() - first_seen < self._patience:
                    continue  # its preferred node may be about to take it
            await self._take(service, entered, name)

    def _eligible_at(self) -> list[float]:
        """When the free backends this node waits on (it does not prefer them) become its to take."""
        return [first_seen + self._patience for first_seen in self._free_since.values()]

    def _prefers(self, name: str) -> bool:
        return not self.settings.prefer or name in self.settings.prefer

    async def _take(self, service: Service, entered: AsyncExitStack, name: str) -> None:
        try:
            lease = await trio.to_thread.run_sync(self.leases.acquire, name)
        except StorageError as exc:
            _log.warning("cluster.acquire_failed", node=self.name, backend=name, error=str(exc))
            return
        if lease is None:
            return  # another node holds it
        self._held[name] = lease  # renewed from now on, whatever follows
        self._free_since.pop(name, None)
        backend = self._backends[name]
        try:
            sessions, jobs = await trio.to_thread.run_sync(
                lambda: self.store.load_backend(name, retain_finished=self._retain)
            )
            if isinstance(backend, AbstractAsyncContextManager):
                await entered.enter_async_context(backend)
            service.adopt(backend, sessions, jobs)
        except (StorageError, ServiceClosedError) as exc:
            _log.warning("cluster.take_over_failed", node=self.name, backend=name, error=str(exc))
            del self._held[name]
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.leases.release, lease)
            return
        _log.info(
            "cluster.backend_taken",
            node=self.name,
            backend=name,
            epoch=lease.epoch,
            sessions=len(sessions),
            jobs=len(jobs),
        )

    # -- keeping what it holds -------------------------------------------------------------------

    async def _keep(self, service: Service) -> None:
        """Renew every lease each third of the lease; stop the node when one cannot be kept."""
        while True:
            await trio.sleep(self.settings.renew_every)
            for name in sorted(self._held):
                lease = self._held.get(name)
                if lease is not None:
                    self._held[name] = await self._renew(service, lease)

    async def _renew(self, service: Service, lease: Lease) -> Lease:
        # stop a tenth of the lease before it could expire (by this node's clock, which the
        # lease's `good_until` was measured on, before the request that set the expiry)
        stop_in = lease.good_until - time.monotonic() - _STOP_MARGIN * self.settings.lease
        with trio.move_on_after(max(0.0, stop_in)):
            while True:
                try:
                    renewed = await trio.to_thread.run_sync(self.leases.renew, lease, abandon_on_cancel=True)
                except StorageError as exc:  # the database does not answer: try again until the watchdog
                    _log.warning("cluster.renew_failed", node=self.name, backend=lease.backend, error=str(exc))
                    await trio.sleep(min(self._poll, self.settings.lease / 10))
                    continue
                if renewed is None:
                    self._lost(service, lease, "another node took it over (its lease had lapsed)")
                return renewed
        self._lost(service, lease, "this node could not renew it before it could expire: the database did not answer")

    def _lost(self, service: Service, lease: Lease, why: str) -> NoReturn:
        service.hand_over(now=True)  # nothing more is written: another node may own it already
        self._held.clear()  # nothing to release: the others expire or are taken over as they lapse
        _log.error("cluster.lease_lost", node=self.name, backend=lease.backend, epoch=lease.epoch, why=why)
        if self.on_lost is not None:
            self.on_lost()
        raise LeaseLostError(
            f"node {self.name!r} lost its lease on backend {lease.backend!r}: {why}. It stopped so that the "
            "backend's new owner alone serves it; start it again to rejoin the cluster"
        )


@asynccontextmanager
async def open_node(
    node: Node, *, settings: ServiceSettings | None = None, journal: JournalStore | None = None
) -> AsyncIterator[Service]:
    """Run `node`'s service for the ``async with`` block: it serves the backends the node takes.

    Before the block starts, the node has taken every free backend it prefers. Leaving the block
    hands the backends over, whatever the reason: normally, running jobs get
    ``settings.shutdown_grace`` and are recorded; with an exception, nothing more is written.
    Then every lease is released, so that other nodes take the backends at once. If the node
    loses a lease meanwhile, the block is cancelled and `LeaseLostError` raised. `journal`: the
    node's store as the service should write to it (`Node.store`, or a wrapper of it).
    """
    try:
        async with trio.open_nursery() as cluster:  # its renewals outlive the service's hand-over
            async with run_service([], settings=settings, store=journal or node.store) as service:
                await cluster.start(node.run, service)
                try:
                    yield service
                except BaseException:
                    node.stop_taking()
                    service.hand_over(now=True)
                    raise
                node.stop_taking()
                service.hand_over()
            cluster.cancel_scope.cancel()
    except BaseExceptionGroup as group:  # a node that lost a lease stopped: say that, not a group
        lost = lease_lost_in(group)
        if lost is None:
            raise
        raise lost from None
    finally:
        with trio.CancelScope(shield=True):
            await node.release_all()
        node.close()
