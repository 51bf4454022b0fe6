"""The supervisor: owns the backends and every session actor, and routes requests to them.

Supervision is one-for-one with temporary children, as in OTP: a session actor that crashes
fails its own jobs and callers and is removed; the other sessions go on. Shutdown stops new
work, lets the sessions drain for a grace period, then cancels whatever is left, and every
waiter is still woken (SPEC J4).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, final

import structlog
import trio

from ._backend import Backend, JobRequest
from ._checks import SessionTerms, check_session_request, find_backend, pick_least_busy
from ._errors import (
    BackendUnavailableError,
    CapacityError,
    InvalidInputError,
    JobFailedError,
    JobNotFoundError,
    ServiceClosedError,
    SessionNotFoundError,
    StorageError,
)
from ._gc_policy import gc_policy
from ._handles import BackendHandle, Session
from ._ids import new_id
from ._jobs import Job, JobRecord, JobStatus
from ._journal import Journal, JournalStore
from ._recovery import job_from_snapshot, machine_from_snapshot, terms_from_snapshot
from ._retention import Retained
from ._scheduler import BackendScheduler
from ._session import SessionActor
from ._settings import ServiceSettings
from ._snapshots import JobSnapshot, SessionSnapshot
from ._time import WallClock
from ._validate import (
    check_id,
    check_options,
    check_program_id,
)

__all__ = ["Service", "run_service"]

_log = structlog.get_logger("qmux")
_SESSION_ID = re.compile(r"[0-9a-z_-]{20,64}")


@final
class Service:
    """An in-process qmux service; make one with `open_service`."""

    def __init__(
        self,
        nursery: trio.Nursery,
        backends: Iterable[Backend],
        settings: ServiceSettings,
        *,
        clock: WallClock,
        journal: Journal | None = None,
    ) -> None:
        self.settings = settings
        self._nursery = nursery
        self._clock = clock
        self._journal = journal
        self._schedulers: dict[str, BackendScheduler] = {}
        self._handles: dict[str, BackendHandle] = {}
        for backend in backends:
            scheduler = BackendScheduler(backend, nursery=nursery, max_waiting=settings.max_waiting_per_backend)
            self._schedulers[backend.name] = scheduler
            self._handles[backend.name] = BackendHandle(
                backend.name, backend.config, self, pending_jobs=scheduler.pending_jobs
            )
        self._live: dict[str, SessionActor] = {}
        #: closed sessions and jobs (finished or not), found by id until per-owner retention drops them
        self._finished: Retained[SessionActor] = Retained(settings.retain_finished)
        self._jobs: Retained[JobRecord] = Retained(settings.retain_finished, evictable=_is_finished)
        self._accepting = True
        self._all_ended = trio.Event()
        self._all_ended.set()
        _log.info("service.started", backends=list(self._schedulers))

    # -- backends ----------------------------------------------------------------------------

    def backends(self) -> list[BackendHandle]:
        return list(self._handles.values())

    def backend(self, name: str) -> BackendHandle:
        return find_backend(self._handles, name)

    def least_busy(
        self, *, operational: bool = True, simulator: bool | None = False, min_num_qubits: int | None = None
    ) -> BackendHandle:
        """The matching backend with the fewest pending jobs (SPEC S6); ``simulator=None``: either."""
        return pick_least_busy(
            self._handles.values(), operational=operational, simulator=simulator, min_num_qubits=min_num_qubits
        )

    # -- sessions ----------------------------------------------------------------------------

    def open_session_port(
        self,
        backend: str,
        *,
        max_time: object = None,
        mode: str = "dedicated",
        failure_policy: str = "continue",
        max_jobs: int | None = None,
        session_id: str | None = None,
        owner: str | None = None,
    ) -> SessionActor:
        """Open a session and start its actor; the checks of SPEC S1, S4, S5, B1, F1 and L1 happen here.

        `session_id` lets a front door open a session under an id its client proposed (so that
        the client knows the id before the round trip); it must be new and look like one of ours.
        `owner` is an opaque tag (a front door's tenant) kept with the session and its jobs, and
        in the journal, so that who may see them survives a restart.
        """
        if session_id is not None and (
            not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id) or self._known(session_id)
        ):
            raise InvalidInputError(
                f"session_id={session_id!r} is not usable: it must be 20 to 64 characters of 0-9, a-z, "
                "'-' or '_', and not already in use"
            )
        if not self._accepting:
            raise ServiceClosedError("the service is shutting down and opens no sessions")
        scheduler = self._schedulers.get(check_id(backend, name="backend"))
        if scheduler is None:
            self.backend(backend)  # raises the error that lists the known names
            raise AssertionError("unreachable")
        config = scheduler.config
        terms = check_session_request(
            backend, config, max_time=max_time, mode=mode, failure_policy=failure_policy, max_jobs=max_jobs
        )
        if len(self._live) >= self.settings.max_open_sessions:
            raise CapacityError(
                f"{len(self._live)} sessions are open, the service's limit; close some or raise max_open_sessions"
            )
        actor = self._new_actor(session_id or new_id(), scheduler, terms, owner=owner)
        if self._journal is not None:
            actor.durable = self._journal.session_changed(actor)
        self._start(actor)
        return actor

    def _new_actor(
        self, session_id: str, scheduler: BackendScheduler, terms: SessionTerms, *, owner: str | None
    ) -> SessionActor:
        return SessionActor(
            session_id=session_id,
            scheduler=scheduler,
            terms=terms,
            clock=self._clock,
            idle_open_timeout=self.settings.idle_open_timeout,
            max_queued_jobs=self.settings.max_queued_jobs_per_session,
            max_mailbox=self.settings.max_mailbox,
            register_job=self._register_job,
            on_ended=self._session_ended,
            on_change=self._journal.session_changed if self._journal else None,
            owner=owner,
        )

    def _start(self, actor: SessionActor) -> None:
        """Supervise `actor`: a temporary child of the service's nursery (one-for-one)."""
        self._live[actor.session_id] = actor
        self._all_ended = trio.Event() if self._all_ended.is_set() else self._all_ended
        self._nursery.start_soon(actor.run, name=f"qmux session {actor.session_id}")

    async def session(self, session_id: str) -> Session:
        """A handle on an existing session, open or finished (``Session.from_id``)."""
        check_id(session_id, name="session_id")
        actor = self._live.get(session_id) or self._finished.get(session_id)
        if actor is None:
            raise SessionNotFoundError(f"no session with id {session_id!r}")
        return Session._from_port(self, actor)

    def stats(self) -> dict[str, int]:
        """What the service holds now: open sessions, finished ones it remembers, jobs it remembers."""
        return {"open_sessions": len(self._live), "finished_sessions": len(self._finished), "jobs": len(self._jobs)}

    def session_owner(self, session_id: str) -> str | None:
        """The owner tag of a session the service remembers; ``None`` if unknown or unowned."""
        actor = self._live.get(session_id) or self._finished.get(session_id)
        return actor.owner if actor is not None else None

    def job_owner(self, job_id: str) -> str | None:
        """The owner tag of a job the service remembers; ``None`` if unknown or unowned."""
        job = self._jobs.get(job_id)
        return job.owner if job is not None else None

    def _known(self, session_id: str) -> bool:
        return session_id in self._live or session_id in self._finished or session_id in self._jobs

    def _session_ended(self, actor: SessionActor) -> None:
        self._live.pop(actor.session_id, None)
        self._finished.add(actor.session_id, actor, actor.owner)
        if not self._live:
            self._all_ended.set()

    # -- jobs --------------------------------------------------------------------------------

    async def submit_job(
        self,
        backend: str,
        program_id: str,
        inputs: Any,
        options: dict[str, Any] | None = None,
        *,
        owner: str | None = None,
    ) -> JobRecord:
        """Submit a job outside any session (job mode)."""
        program_id, options = check_program_id(program_id), check_options(options)
        if not self._accepting:
            raise ServiceClosedError("the service is shutting down and accepts no jobs")
        scheduler = self._schedulers.get(check_id(backend, name="backend"))
        if scheduler is None:
            self.backend(backend)
            raise AssertionError("unreachable")
        if not scheduler.config.operational:
            raise BackendUnavailableError(f"backend {backend!r} is not operational; it accepts no jobs")
        job = JobRecord(
            JobRequest(new_id(), None, program_id, inputs, dict(options or {})),
            backend,
            trio.current_time(),
            scheduler.cancel_job,
            owner=owner,
            clock=self._clock,
        )
        scheduler.submit(job)
        self._register_job(job)
        _log.debug("job.queued", job_id=job.job_id, backend=backend, program_id=program_id, mode="job")
        if job.durable is not None:
            try:
                await job.durable.wait()
            except StorageError:
                await scheduler.cancel_job(job)  # not written, so not accepted: it must not run
                raise
        return job

    async def job(self, job_id: str) -> Job:
        """A handle on a job by id, while the service remembers it."""
        job = self._jobs.get(check_id(job_id, name="job_id"))
        if job is None:
            raise JobNotFoundError(f"no job with id {job_id!r}")
        return Job(job)

    def _register_job(self, job: JobRecord) -> None:
        self._jobs.add(job.job_id, job, job.owner)
        if self._journal is not None:
            job.observer = self._journal.job_changed
            job.durable = self._journal.job_changed(job)

    # -- recovery ------------------------------------------------------------------------------

    def _recover(self, sessions: list[SessionSnapshot], jobs: list[JobSnapshot]) -> None:
        """Bring back what a journal holds: finished jobs for lookup, open sessions, queued jobs."""
        unfinished: dict[str | None, list[JobSnapshot]] = {}
        for snapshot in jobs:
            if snapshot.status in ("QUEUED", "RUNNING"):
                unfinished.setdefault(snapshot.session_id, []).append(snapshot)
            else:
                self._revive(snapshot, _refuse_cancel)
        for session in sessions:
            snapshots = unfinished.pop(session.session_id, [])
            scheduler = self._schedulers.get(session.backend)
            if scheduler is None:
                self._fail_orphans(snapshots, f"its backend {session.backend!r} is no longer served")
                continue
            actor = self._new_actor(session.session_id, scheduler, terms_from_snapshot(session), owner=session.owner)
            machine = machine_from_snapshot(
                session,
                to_trio=self._clock.trio_at,
                interactive_ttl=scheduler.config.interactive_ttl,
                idle_open_timeout=self.settings.idle_open_timeout,
            )
            if machine.is_closed:  # kept for lookup until retention drops it (V1)
                actor.retire(machine, session.root_job_id)
                self._finished.add(actor.session_id, actor, actor.owner)
                self._fail_orphans(snapshots, "its session had closed")  # jobs it was running (S10)
                continue
            revived = [self._revive(snapshot, actor._cancel_job) for snapshot in snapshots]
            actor.resume(machine, session.root_job_id, [job for job in revived if job.status is JobStatus.QUEUED])
            self._start(actor)
        for session_id, snapshots in unfinished.items():
            for snapshot in snapshots:
                scheduler = self._schedulers.get(snapshot.backend)
                if session_id is not None or scheduler is None:
                    self._fail_orphans([snapshot], "its session or backend did not survive the restart")
                    continue
                job = self._revive(snapshot, scheduler.cancel_job)
                if job.status is JobStatus.QUEUED:
                    scheduler.submit(job)
        _log.info("service.recovered", sessions=len(self._live), jobs=len(self._jobs))

    def _revive(self, snapshot: JobSnapshot, canceller: Callable[[JobRecord], Awaitable[None]]) -> JobRecord:
        """A job record from its snapshot, remembered for lookup and journaled while it can change."""
        scheduler = self._schedulers.get(snapshot.backend)
        job = job_from_snapshot(
            snapshot,
            to_trio=self._clock.trio_at,
            now=trio.current_time(),
            canceller=canceller,
            idempotent=bool(scheduler and scheduler.config.idempotent),
        )
        job.clock = self._clock
        self._jobs.add(job.job_id, job, job.owner)
        if self._journal is not None and snapshot.status in ("QUEUED", "RUNNING"):
            job.observer = self._journal.job_changed
            if job.status.is_final:  # failed as interrupted by the restart: that is news to keep
                self._journal.job_changed(job)
        return job

    def _fail_orphans(self, snapshots: list[JobSnapshot], why: str) -> None:
        for snapshot in snapshots:
            job = self._revive(snapshot, _refuse_cancel)
            job.finish(
                JobStatus.ERROR,
                trio.current_time(),
                error=JobFailedError(
                    f"job {snapshot.job_id} cannot run after the restart: {why}", job_id=snapshot.job_id
                ),
            )

    # -- lifecycle ---------------------------------------------------------------------------

    async def _drain(self, grace: float) -> None:
        """Stop accepting, close every session (S12) and wait up to `grace` for the work to end."""
        self._accepting = False
        _log.info("service.stopping", open_sessions=len(self._live), grace=grace)
        for actor in list(self._live.values()):
            actor.close_nowait()
        with trio.move_on_after(grace):
            await self._all_ended.wait()
            for scheduler in self._schedulers.values():
                await scheduler.wait_idle()

    def _stop_schedulers(self) -> None:
        for scheduler in self._schedulers.values():
            scheduler.shut_down()


def _is_finished(job: JobRecord) -> bool:
    return job.status.is_final


async def _refuse_cancel(job: JobRecord) -> None:  # pragma: no cover - only finished jobs get it
    """The canceller of a job that has already ended: there is nothing to cancel (S16)."""


@asynccontextmanager
async def run_service(
    backends: Iterable[Backend], *, settings: ServiceSettings | None = None, store: JournalStore | None = None
) -> AsyncIterator[Service]:
    """Supervise `backends` for the duration of the ``async with`` block (``qmux.open_service``'s core).

    `store`, when given, records every accepted session and job before it is acknowledged;
    when it already holds a journal, the service recovers from it first. Leaving the block
    normally drains for ``settings.shutdown_grace`` seconds; leaving it with an exception
    cancels at once. Either way, every job's waiter is woken. The store is closed on the way out.
    """
    resolved = list(backends)
    names = [backend.name for backend in resolved]
    for name in names:
        if names.count(name) > 1:
            raise InvalidInputError(f"two backends are named {name!r}; backend names must be unique")
    settings = settings or ServiceSettings()
    body_error: BaseException | None = None
    try:
        async with AsyncExitStack() as backends_in_use:
            for backend in resolved:  # a backend with a lifecycle (a connection, say) lives as long as the service
                if isinstance(backend, AbstractAsyncContextManager):
                    await backends_in_use.enter_async_context(backend)
            loaded = None
            if store is not None:
                loaded = await trio.to_thread.run_sync(lambda: store.load(finished_jobs=settings.retain_finished))
            clock = WallClock.start()
            writer = Journal(store, clock) if store is not None else None
            async with trio.open_nursery() as journal_nursery:
                if writer is not None:
                    journal_nursery.start_soon(writer.run, name="qmux journal")
                async with trio.open_nursery() as nursery:
                    service = Service(nursery, resolved, settings, clock=clock, journal=writer)
                    if loaded is not None:
                        service._recover(*loaded)
                    # started: what start-up allocated leaves the collector's scans; undone as the service ends
                    backends_in_use.enter_context(gc_policy(settings.gc))
                    try:
                        yield service
                    except BaseException as exc:  # re-raised below, outside the nurseries, unwrapped
                        body_error = exc
                    finally:
                        with trio.CancelScope(shield=True):
                            await service._drain(settings.shutdown_grace if body_error is None else 0)
                        service._stop_schedulers()
                        nursery.cancel_scope.cancel()
                if writer is not None:
                    with trio.CancelScope(shield=True):
                        await writer.flush()
                journal_nursery.cancel_scope.cancel()
    finally:
        if store is not None:
            store.close()
    _log.info("service.stopped")
    if body_error is not None:
        raise body_error
