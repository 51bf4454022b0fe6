"""The supervisor: owns the backends and every session actor, and routes requests to them.

Supervision is one-for-one with temporary children, as in OTP: a session actor that crashes
fails its own jobs and callers and is removed; the other sessions go on. Shutdown stops new
work, lets the sessions drain for a grace period, then cancels whatever is left, and every
waiter is still woken (SPEC J4).
"""

from __future__ import annotations

import itertools
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, final

import structlog
import trio

from ._backend import Backend, JobRequest
from ._checks import check_session_request, find_backend, pick_least_busy
from ._errors import (
    BackendUnavailableError,
    CapacityError,
    InvalidInputError,
    JobCancelledError,
    JobError,
    JobFailedError,
    JobNotFoundError,
    ServiceClosedError,
    SessionNotFoundError,
    StorageError,
)
from ._handles import BackendHandle, Session
from ._ids import new_id
from ._jobs import Job, JobRecord, JobStatus
from ._journal import Journal, JournalStore
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
        self._finished: OrderedDict[str, SessionActor] = OrderedDict()
        self._jobs: OrderedDict[str, JobRecord] = OrderedDict()
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
        session_id: str | None = None,
        owner: str | None = None,
    ) -> SessionActor:
        """Open a session and start its actor; the checks of SPEC S1, S4 and S5 happen here.

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
        seconds = check_session_request(backend, config, max_time=max_time, mode=mode)
        if len(self._live) >= self.settings.max_open_sessions:
            raise CapacityError(
                f"{len(self._live)} sessions are open, the service's limit; close some or raise max_open_sessions"
            )
        actor = SessionActor(
            session_id=session_id or new_id(),
            scheduler=scheduler,
            max_time=seconds,
            clock=self._clock,
            idle_open_timeout=self.settings.idle_open_timeout,
            max_queued_jobs=self.settings.max_queued_jobs_per_session,
            max_mailbox=self.settings.max_mailbox,
            mode=mode,
            register_job=self._register_job,
            on_ended=self._session_ended,
            on_change=self._journal.session_changed if self._journal else None,
            owner=owner,
        )
        if self._journal is not None:
            actor.durable = self._journal.session_changed(actor)
        self._live[actor.session_id] = actor
        self._all_ended = trio.Event() if self._all_ended.is_set() else self._all_ended
        self._nursery.start_soon(actor.run, name=f"qmux session {actor.session_id}")
        return actor

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
        self._finished[actor.session_id] = actor
        while len(self._finished) > self.settings.retain_finished:
            self._finished.popitem(last=False)
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
        try:
            return Job(self._jobs[check_id(job_id, name="job_id")])
        except KeyError:
            raise JobNotFoundError(f"no job with id {job_id!r}") from None

    def _register_job(self, job: JobRecord) -> None:
        jobs = self._jobs
        jobs[job.job_id] = job
        if self._journal is not None:
            job.observer = self._journal.job_changed
            job.durable = self._journal.job_changed(job)
        excess = len(jobs) - self.settings.retain_finished
        if excess > 0:  # forget the oldest finished jobs; unfinished ones are never dropped
            oldest = itertools.islice(jobs.items(), 4 * excess)
            for old_id in [jid for jid, old in oldest if old.status.is_final][:excess]:
                del jobs[old_id]

    # -- recovery ------------------------------------------------------------------------------

    def _recover(self, sessions: list[SessionSnapshot], jobs: list[JobSnapshot]) -> None:
        """Bring back what a journal holds: finished jobs for lookup, open sessions, queued jobs."""
        unfinished: dict[str | None, list[JobSnapshot]] = {}
        for row in jobs:
            if row.status in ("QUEUED", "RUNNING"):
                unfinished.setdefault(row.session_id, []).append(row)
            else:
                self._jobs[row.job_id] = self._revive(row, _refuse_cancel)
        for session_row in sessions:
            rows = unfinished.pop(session_row.session_id, [])
            scheduler = self._schedulers.get(session_row.backend)
            if scheduler is None:
                self._fail_orphans(rows, f"its backend {session_row.backend!r} is no longer served")
                continue
            actor = SessionActor(
                session_id=session_row.session_id,
                scheduler=scheduler,
                max_time=session_row.max_time,
                clock=self._clock,
                idle_open_timeout=self.settings.idle_open_timeout,
                max_queued_jobs=self.settings.max_queued_jobs_per_session,
                max_mailbox=self.settings.max_mailbox,
                mode=session_row.mode,
                register_job=self._register_job,
                on_ended=self._session_ended,
                on_change=self._journal.session_changed if self._journal else None,
                owner=session_row.owner,
            )
            revived = [self._revive(row, actor._cancel_job) for row in rows]
            self._live[actor.session_id] = actor
            self._all_ended = trio.Event() if self._all_ended.is_set() else self._all_ended
            actor.restore(session_row, [j for j in revived if j.status is JobStatus.QUEUED], self._clock.trio_at)
            self._nursery.start_soon(actor.run, name=f"qmux session {actor.session_id}")
        for session_id, rows in unfinished.items():
            for row in rows:
                scheduler = self._schedulers.get(row.backend)
                if session_id is not None or scheduler is None:
                    self._fail_orphans([row], "its session or backend did not survive the restart")
                    continue
                job = self._revive(row, scheduler.cancel_job)
                if job.status is JobStatus.QUEUED:
                    scheduler.submit(job)
        _log.info("service.recovered", sessions=len(self._live), jobs=len(self._jobs))

    def _revive(self, row: JobSnapshot, canceller: Callable[[JobRecord], Awaitable[None]]) -> JobRecord:
        """A job record from its journal row; one that was running is failed as interrupted."""
        job = JobRecord(
            JobRequest(row.job_id, row.session_id, row.program_id, row.inputs, dict(row.options)),
            row.backend,
            self._clock.trio_at(row.created_at),
            canceller,
            owner=row.owner,
        )
        self._jobs[job.job_id] = job
        status = JobStatus(row.status)
        if status.is_final:
            error: JobError | None = None
            if row.error is not None:
                kind = JobCancelledError if row.error.kind == "cancelled" else JobFailedError
                error = kind(row.error.message, job_id=row.job_id, reason=row.error.reason)
            job.finish(status, self._clock.trio_at(row.finished_at or row.created_at), value=row.value, error=error)
            if row.started_at is not None:
                job.started_at = self._clock.trio_at(row.started_at)
            return job
        job.observer = self._journal.job_changed if self._journal else None
        scheduler = self._schedulers.get(row.backend)
        if status is JobStatus.RUNNING and not (scheduler and scheduler.config.idempotent):
            job.finish(
                JobStatus.ERROR,
                trio.current_time(),
                error=JobFailedError(
                    f"job {row.job_id} was interrupted by a restart of the service while it ran; "
                    "its backend does not say it is safe to run again",
                    job_id=row.job_id,
                    reason="interrupted_by_restart",
                ),
            )
        return job

    def _fail_orphans(self, rows: list[JobSnapshot], why: str) -> None:
        for row in rows:
            job = self._revive(row, _refuse_cancel)
            job.finish(
                JobStatus.ERROR,
                trio.current_time(),
                error=JobFailedError(f"job {row.job_id} cannot run after the restart: {why}", job_id=row.job_id),
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
                loaded = await trio.to_thread.run_sync(lambda: store.load(retain_finished=settings.retain_finished))
            clock = WallClock.start()
            writer = Journal(store, clock) if store is not None else None
            async with trio.open_nursery() as journal_nursery:
                if writer is not None:
                    journal_nursery.start_soon(writer.run, name="qmux journal")
                async with trio.open_nursery() as nursery:
                    service = Service(nursery, resolved, settings, clock=clock, journal=writer)
                    if loaded is not None:
                        service._recover(*loaded)
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
