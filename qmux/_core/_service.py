"""The supervisor: owns the backends and every session actor, and routes requests to them.

Supervision is one-for-one with temporary children, as in OTP: a session actor that crashes
fails its own jobs and callers and is removed; the other sessions go on. Shutdown stops new
work, lets the sessions drain for a grace period, then cancels whatever is left, and every
waiter is still woken (SPEC J4).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, Final, TypeVar, final

import structlog
import trio
from attrs import frozen

from ._backend import Backend, JobRequest
from ._checks import BackendDirectory, SessionTerms, check_session_request
from ._clocks import SessionClocks
from ._errors import (
    BackendUnavailableError,
    CapacityError,
    InvalidInputError,
    JobFailedError,
    JobNotFoundError,
    ServiceClosedError,
    SessionNotFoundError,
)
from ._events import Event, EventHub
from ._gc_policy import gc_policy
from ._handles import BackendHandle, Session
from ._ids import new_id
from ._jobs import Job, JobChange, JobObserver, JobRecord, JobStatus
from ._journal import Journal, JournalStore
from ._recovery import job_from_snapshot, machine_from_snapshot, terms_from_snapshot
from ._retention import Retained
from ._scheduler import BackendScheduler
from ._session import SessionActor
from ._session_state import SessionState
from ._settings import ServiceSettings
from ._snapshots import JobSnapshot, SessionSnapshot
from ._time import WallClock
from ._validate import check_id, check_options, check_positive_int, check_program_id, check_tags

__all__ = ["Service", "run_service"]

_log = structlog.get_logger("qmux")
_SESSION_ID = re.compile(r"[0-9a-z_-]{20,64}")


@final
class Service(BackendDirectory):
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
            self._serve_backend(backend)
        self._live: dict[str, SessionActor] = {}
        #: closed sessions and jobs (finished or not), found by id until per-owner retention drops them
        self._finished: Retained[SessionActor] = Retained(settings.retain_finished)
        self._jobs: Retained[JobRecord] = Retained(settings.retain_finished, evictable=_is_finished)
        #: per owner: how many sessions are open, and which jobs are queued or running (admission by owner)
        self._open_of: dict[str | None, int] = {}
        self._unfinished_of: dict[str | None, set[str]] = {}
        self._accepting = True
        #: how leaving `run_service` ends the work: close every session (a stop), or leave the
        #: journal as it is for another process to take over ("graceful" or "now", `hand_over`)
        self._handing_over: str | None = None
        self._all_ended = trio.Event()
        self._all_ended.set()
        #: what happens, to whoever listens (SPEC E1)
        self.events_hub = EventHub(
            wall=clock.at,
            buffer=settings.event_buffer,
            max_per_owner=settings.max_subscribers_per_owner,
            first_seq=max(1, round(clock.wall_epoch.timestamp() * 1_000_000)),
        )
        _log.info("service.started", backends=list(self._schedulers))

    # -- backends ----------------------------------------------------------------------------

    def _serve_backend(self, backend: Backend) -> BackendScheduler:
        scheduler = BackendScheduler(backend, nursery=self._nursery, max_waiting=self.settings.max_waiting_per_backend)
        self._schedulers[backend.name] = scheduler
        self._handles[backend.name] = BackendHandle(
            backend.name, backend.config, self, pending_jobs=scheduler.pending_jobs
        )
        return scheduler

    def know(self, backend: Backend) -> None:
        """List `backend` without serving it: another process of its cluster does (or will).

        Every node of a cluster describes every backend, so that a client that asks any node
        finds it (`backends()`, `backend(name)`), even while it moves between nodes; work for it
        is refused here with `BackendUnavailableError` (a node's front door forwards it to the
        owner first). `adopt` serves it.
        """
        if backend.name not in self._handles:
            self._handles[backend.name] = BackendHandle(backend.name, backend.config, self, pending_jobs=_none_pending)

    def serves(self, backend: str) -> bool:
        """Whether this service runs `backend` (not merely knows it)."""
        return backend in self._schedulers

    def _not_served(self, backend: str) -> Exception:
        """The error for work on a backend this service does not run: unknown, or known only."""
        self.backend(backend)  # raises the error that lists the known names
        return BackendUnavailableError(
            f"backend {backend!r} is not served by this process: another node of its cluster serves it"
        )

    def adopt(self, backend: Backend, sessions: list[SessionSnapshot], jobs: list[JobSnapshot]) -> None:
        """Serve one more backend from now on, taking over its sessions and jobs as the journal holds them.

        This is how a node of a cluster takes a backend over from a node that stopped: `sessions`
        and `jobs` are the journal's rows of `backend` (``JournalStore.load`` restricted to it),
        recovered exactly as a restart recovers them (SPEC J4): open sessions resume with their
        queued jobs, a job that was running fails as ``interrupted_by_restart`` unless the backend
        is idempotent, finished ones are kept for lookup. The other backends are not disturbed.
        The caller enters the backend's own context, if it has one, for as long as it is served.
        """
        if backend.name in self._schedulers:
            raise InvalidInputError(f"backend {backend.name!r} is already served here")
        if not self._accepting:
            raise ServiceClosedError("the service is shutting down and takes no backend over")
        if any(row.backend != backend.name for row in sessions) or any(row.backend != backend.name for row in jobs):
            raise InvalidInputError(f"adopt({backend.name!r}) was given another backend's sessions or jobs")
        self._serve_backend(backend)
        _log.info("service.adopting", backend=backend.name, sessions=len(sessions), jobs=len(jobs))
        self._recover(sessions, jobs)

    def hand_over(self, *, now: bool = False) -> None:
        """On leaving `run_service`, leave the journal as it is for another process to take over.

        A plain stop closes every session (S12) and records it. A node of a cluster that stops
        instead hands its backends over: their sessions stay open in the journal, their queued
        jobs stay queued, and the node that takes them over recovers them (SPEC J4). Without `now`
        (a graceful stop): on leaving, no job starts any more, the running ones get
        ``shutdown_grace`` to end and are recorded, then nothing more is written. With `now`
        (the node lost its claim on a backend): nothing is written from this call on, since
        another process may already own what this one would write.
        """
        self._accepting = False
        self._handing_over = "now" if now else (self._handing_over or "graceful")
        if now and self._journal is not None:
            self._journal.seal()
        _log.info("service.handing_over", now=now, open_sessions=len(self._live))

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
            raise self._not_served(backend)
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
        actor.announce()
        return actor

    def _new_actor(
        self, session_id: str, scheduler: BackendScheduler, terms: SessionTerms, *, owner: str | None
    ) -> SessionActor:
        bound = self._bound
        return SessionActor(
            session_id=session_id,
            scheduler=scheduler,
            terms=terms,
            clock=self._clock,
            idle_open_timeout=self.settings.idle_open_timeout,
            max_queued_jobs=self.settings.max_queued_jobs_per_session,
            max_mailbox=self.settings.max_mailbox,
            register_job=bound.register_job,
            on_ended=bound.session_ended,
            clocks=self._session_clocks,
            on_change=bound.session_changed,
            owner=owner,
            events=self.events_hub,
            warnings=(self.settings.ittl_warning, self.settings.max_time_warning),
        )

    def _start(self, actor: SessionActor) -> None:
        """Supervise `actor`: a temporary child of the service's nursery (one-for-one)."""
        self._live[actor.session_id] = actor
        self._open_of[actor.owner] = self._open_of.get(actor.owner, 0) + 1
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

    def open_sessions_of(self, owner: str | None) -> int:
        """How many sessions tagged `owner` are open now (a front door bounds it per tenant)."""
        return self._open_of.get(owner, 0)

    def unfinished_jobs_of(self, owner: str | None) -> int:
        """How many jobs tagged `owner` are queued or running now (a front door bounds it per tenant).

        The counts are kept from the first time anyone asks (every unfinished job is remembered,
        so they start right): a service no front door bounds never counts.
        """
        if not self._counts_unfinished:
            self._counts_unfinished = True
            self._watch_remembered()
        return len(self._unfinished_of.get(owner, ()))

    def _known(self, session_id: str) -> bool:
        return session_id in self._live or session_id in self._finished or session_id in self._jobs

    def _session_ended(self, actor: SessionActor) -> None:
        if self._live.pop(actor.session_id, None) is not None:
            left = self._open_of[actor.owner] - 1
            if left:
                self._open_of[actor.owner] = left
            else:
                del self._open_of[actor.owner]
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
        tags: Iterable[str] = (),
        owner: str | None = None,
    ) -> JobRecord:
        """Submit a job outside any session (job mode)."""
        program_id, options = check_program_id(program_id), check_options(options)
        checked_tags = () if tags == () else check_tags(tags)
        if not self._accepting:
            raise ServiceClosedError("the service is shutting down and accepts no jobs")
        scheduler = self._schedulers.get(check_id(backend, name="backend"))
        if scheduler is None:
            raise self._not_served(backend)
        if not scheduler.config.operational:
            raise BackendUnavailableError(f"backend {backend!r} is not operational; it accepts no jobs")
        scheduler.check_room()
        job = JobRecord(
            JobRequest(new_id(), None, program_id, inputs, options),
            backend,
            scheduler.now(),
            self._bound.cancel_in_line,
            owner=owner,
            clock=self._clock,
            tags=checked_tags,
        )
        self._register_job(job)  # first: whoever watches it sees it start
        scheduler.submit(job)
        if scheduler.logs_debug:
            scheduler.log.debug("job.queued", job_id=job.job_id, program_id=program_id, mode="job")
        if job.durable is not None:
            await job.wait_accepted()
        return job

    async def job(self, job_id: str) -> Job:
        """A handle on a job by id, while the service remembers it."""
        job = self._jobs.get(check_id(job_id, name="job_id"))
        if job is None:
            raise JobNotFoundError(f"no job with id {job_id!r}")
        return Job(job)

    def _register_job(self, job: JobRecord) -> None:
        self._jobs.add(job.request.job_id, job, job.owner)
        job.events, job.position = self.events_hub, self._bound.queue_position
        job.retagged = self._bound.job_retagged
        self._count_unfinished(job)
        if self._journal is not None:
            job.durable = self._journal.job_changed(job)
        if not self.events_hub.quiet:
            job.publish(job.created_at)

    async def _cancel_in_line(self, job: JobRecord) -> None:
        """Cancel a job-mode job: its backend's scheduler drops it from the line or stops it (J2)."""
        await self._schedulers[job.backend_name].cancel_job(job)

    @functools.cached_property
    def _session_clocks(self) -> SessionClocks:
        """Every session's deadlines, in one heap with one task (started with the first deadline)."""
        return SessionClocks(self._nursery)

    @functools.cached_property
    def _bound(self) -> _Bound:
        """The callbacks every actor and job holds, each bound once for the service's life."""
        return _Bound(
            register_job=self._register_job,
            session_ended=self._session_ended,
            session_changed=self._journal.session_changed if self._journal is not None else None,
            job_changed=self._job_changed,
            job_retagged=self._journal.job_changed if self._journal is not None else None,
            queue_position=self._queue_position,
            cancel_in_line=self._cancel_in_line,
        )

    def _queue_position(self, job: JobRecord) -> int | None:
        scheduler = self._schedulers.get(job.backend_name)
        session = self._live.get(job.session_id) if job.session_id is not None else None
        return scheduler.jobs_ahead(job, session) if scheduler is not None else None

    # -- seeing what runs (SPEC V1, E1, U1, Q1) -------------------------------------------------

    async def sessions(
        self,
        *,
        backend: str | None = None,
        state: str | None = None,
        created_after: dt.datetime | None = None,
        created_before: dt.datetime | None = None,
        limit: int | None = None,
        owner: str | None = None,
        start_after: tuple[dt.datetime, str] | None = None,
    ) -> AsyncIterator[Session]:
        """The sessions the service remembers, open and closed, newest first (SPEC V1).

        `state` is one of ``open``, ``active``, ``inactive``, ``closed``; `created_after` and
        `created_before` are aware datetimes bounding when it was opened; `owner` (a front door's
        tenant) limits it to that owner's. `start_after` is a page's end, ``(created, id)`` of the
        last session it listed: the listing goes on strictly after it (a front door's cursor).
        """
        check = ListingFilter.of(self._clock, created_after, created_before, limit, start_after)
        if state is not None and state not in SESSION_STATES:
            raise InvalidInputError(f"state={state!r} is not a session state; use one of {', '.join(SESSION_STATES)}")
        actors = [
            actor
            for actor in itertools.chain(self._live.values(), self._finished)
            if (backend is None or actor.backend_name == backend)
            and (state is None or actor.state.value == state)
            and (owner is None or actor.owner == owner)
            and check.created(actor.machine.opened_at)
        ]
        for actor in check.page(actors, lambda actor: (actor.machine.opened_at, actor.session_id)):
            yield Session._from_port(self, actor)

    async def jobs(
        self,
        *,
        status: str | JobStatus | None = None,
        session_id: str | None = None,
        backend: str | None = None,
        created_after: dt.datetime | None = None,
        created_before: dt.datetime | None = None,
        tags: Iterable[str] = (),
        limit: int | None = None,
        owner: str | None = None,
        start_after: tuple[dt.datetime, str] | None = None,
    ) -> AsyncIterator[Job]:
        """The jobs the service remembers, newest first (SPEC V1); `tags`: only those with all of them (T1).

        `start_after`: ``(created, id)`` of the last job of a page; the listing goes on after it.
        """
        check = ListingFilter.of(self._clock, created_after, created_before, limit, start_after)
        wanted = None if status is None else _job_status(status)
        required = set(check_tags(tags))
        records = [
            job
            for job in self._jobs
            if (wanted is None or job.status is wanted)
            and (session_id is None or job.session_id == session_id)
            and (backend is None or job.backend_name == backend)
            and (owner is None or job.owner == owner)
            and required.issubset(job.tags)
            and check.created(job.created_at)
        ]
        for job in check.page(records, lambda job: (job.created_at, job.job_id)):
            yield Job(job)

    def events(
        self, *, session_id: str | None = None, backend: str | None = None, owner: str | None = None
    ) -> AsyncIterator[Event]:
        """Every event from now, of one session or one backend or all (SPEC E1); ends when the service stops."""
        if session_id is not None:
            check_id(session_id, name="session_id")
        if backend is not None:
            self.backend(backend)
        subscription = self.events_hub.subscribe(session_id=session_id, backend=backend, owner=owner)
        for actor in self._live.values():  # warnings are armed only while someone listens
            if session_id is None or actor.session_id == session_id:
                actor.watch_started()
        return subscription

    async def usage(
        self, since: dt.datetime | None = None, until: dt.datetime | None = None, *, owner: str | None = None
    ) -> dict[str, dict[str, float]]:
        """Per backend, the jobs that ran and their seconds on it, over a time window (SPEC U1)."""
        window = ListingFilter.of(self._clock, since, until, None, names=("since", "until"))
        now = trio.current_time()
        totals: dict[str, dict[str, float]] = {}
        for job in self._jobs:
            if job.started_at is None or (owner is not None and job.owner != owner):
                continue
            end = job.finished_at if job.finished_at is not None else now
            if not window.created(end):
                continue
            entry = totals.setdefault(job.backend_name, {"jobs": 0, "quantum_seconds": 0.0})
            entry["jobs"] += 1
            entry["quantum_seconds"] += end - job.started_at
        return totals

    async def queue_info(self, backend: str) -> dict[str, int]:
        """``{"priority": n, "normal": m}`` (SPEC Q1): jobs of active sessions and batches, jobs in the line."""
        scheduler = self._schedulers.get(check_id(backend, name="backend"))
        if scheduler is None:
            raise self._not_served(backend)
        return scheduler.queue_info()

    #: whether unfinished jobs are counted per owner (once a front door asked, `unfinished_jobs_of`)
    _counts_unfinished = False
    #: told of each job's start and end (`observe_jobs`)
    _job_observers: tuple[JobObserver, ...] = ()

    def observe_jobs(self, observer: JobObserver) -> None:
        """Tell `observer` of every job's start and end from now on, inline, as each happens.

        Every job the service runs is told, however it came (a front door, in process, recovered
        from a journal, adopted from another node); one that had started or ended before this
        call is told only of what comes after. `observer` must be cheap: it runs on the path
        every job takes (a metrics exporter counts here). One that raises is logged
        (``service.job_observer_failed``) and changes nothing for the job or the other observers.
        """
        first = not self._job_observers
        self._job_observers = (*self._job_observers, observer)
        if first:
            self._watch_remembered()

    def _watch_remembered(self) -> None:
        """A reason to watch jobs appeared (counts per owner, job observers): watch those already here."""
        for job in self._jobs:
            self._count_unfinished(job)

    def _count_unfinished(self, job: JobRecord) -> None:
        """Watch `job` until it ends: the journal records each change, its owner's count of
        unfinished jobs includes it (if counts are kept), job observers hear of its start and
        end. With none of them, it is told nothing."""
        if job.status.is_final:
            return
        if self._counts_unfinished:
            unfinished = self._unfinished_of.get(job.owner)
            if unfinished is None:
                unfinished = self._unfinished_of[job.owner] = set()
            unfinished.add(job.request.job_id)
        if self._counts_unfinished or self._journal is not None or self._job_observers:
            job.observer = self._bound.job_changed

    def _job_changed(self, job: JobRecord) -> None:
        if job.status.is_final:
            unfinished = self._unfinished_of.get(job.owner)
            if unfinished is not None:
                unfinished.discard(job.request.job_id)
                if not unfinished:
                    del self._unfinished_of[job.owner]
        if self._journal is not None:
            self._journal.job_changed(job)
        if self._job_observers:
            change = JobChange.of(job)
            for observer in self._job_observers:
                try:
                    observer(change)
                except Exception:  # its bug: the job and the other observers go on
                    _log.exception("service.job_observer_failed", observer=repr(observer), job_id=change.job_id)

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
        job.retagged = self._bound.job_retagged
        self._jobs.add(job.job_id, job, job.owner)
        if snapshot.status in ("QUEUED", "RUNNING"):
            self._count_unfinished(job)
            if job.status.is_final and self._journal is not None:  # failed as interrupted by the restart: news
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

    async def _let_running_end(self, grace: float) -> None:
        """A graceful hand-over: start no more jobs, give the running ones `grace` to end, record
        them, then stop recording: what the journal holds is what the next owner recovers."""
        for scheduler in self._schedulers.values():
            scheduler.pause()
        running = [job for job in self._jobs if job.status is JobStatus.RUNNING]
        with trio.move_on_after(grace):
            for job in running:  # ended, and recorded as such (a session's job ends in its actor)
                await job.wait()
        if self._journal is not None:
            await self._journal.flush()
            self._journal.seal()

    def _stop_schedulers(self) -> None:
        for scheduler in self._schedulers.values():
            scheduler.shut_down()


SESSION_STATES: Final = tuple(state.value for state in SessionState)


@frozen
class _Bound:
    """A service's callbacks, each bound once (`Service._bound`).

    Every session actor holds some of them and every job others: a bound method made per actor
    or per job would be one more object for the cyclic garbage collector to scan, each time.
    """

    register_job: Callable[[JobRecord], None]
    session_ended: Callable[[SessionActor], None]
    session_changed: Callable[[SessionActor], object] | None
    job_changed: Callable[[JobRecord], None]
    job_retagged: Callable[[JobRecord], object] | None
    queue_position: Callable[[JobRecord], int | None]
    cancel_in_line: Callable[[JobRecord], Awaitable[None]]


_T = TypeVar("_T")


@frozen
class ListingFilter:
    """The time window, limit and starting point of a listing, checked once (SPEC V1).

    A listing is ordered newest first by its items' *keys*: ``(created, id)`` with ``created``
    the UTC datetime a user sees (to the microsecond). The key orders items created at the same
    instant too (tests open many at one virtual instant), so a page that ends at a key and the
    next one that starts strictly after it neither skip nor repeat an item.
    """

    clock: WallClock
    after: float
    before: float
    limit: int | None
    start_after: tuple[dt.datetime, str] | None = None

    @classmethod
    def of(
        cls,
        clock: WallClock,
        after: dt.datetime | None,
        before: dt.datetime | None,
        limit: int | None,
        start_after: tuple[dt.datetime, str] | None = None,
        *,
        names: tuple[str, str] = ("created_after", "created_before"),
    ) -> ListingFilter:
        """The filter of a listing; `names` are what the caller calls `after` and `before` (in errors)."""
        if limit is not None:
            check_positive_int(limit, name="limit")
        if start_after is not None and not (
            isinstance(start_after, tuple)
            and len(start_after) == 2
            and isinstance(start_after[0], dt.datetime)
            and start_after[0].tzinfo is not None
            and isinstance(start_after[1], str)
        ):
            raise InvalidInputError(
                f"start_after={start_after!r} must be (created, id): an aware datetime and an id, or None"
            )
        return cls(
            clock,
            _trio_bound(clock, after, names[0], -math.inf),
            _trio_bound(clock, before, names[1], math.inf),
            limit,
            start_after,
        )

    def created(self, at: float) -> bool:
        return self.after <= at < self.before

    def page(self, items: list[_T], key: Callable[[_T], tuple[float, str]]) -> list[_T]:
        """`items` newest first by key, strictly after `start_after`, at most `limit` of them."""
        keyed = [((self.clock.at(created), ident), item) for item in items for created, ident in (key(item),)]
        if self.start_after is not None:
            keyed = [entry for entry in keyed if entry[0] < self.start_after]
        keyed.sort(key=lambda entry: entry[0], reverse=True)
        return [item for _, item in keyed[: self.limit]]


def _trio_bound(clock: WallClock, value: dt.datetime | None, name: str, default: float) -> float:
    if value is None:
        return default
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise InvalidInputError(f"{name}={value!r} must be an aware datetime (with a time zone), or None")
    return clock.trio_at(value.timestamp())


def _job_status(value: str | JobStatus) -> JobStatus:
    try:
        return value if isinstance(value, JobStatus) else JobStatus(value)
    except ValueError:
        allowed = ", ".join(status.value for status in JobStatus)
        raise InvalidInputError(f"status={value!r} is not a job status; use one of {allowed}") from None


def _none_pending() -> int:
    return 0


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
                    # started: what start-up allocated leaves the collector's scans; undone as the service ends
                    backends_in_use.enter_context(gc_policy(settings.gc))
                    try:
                        yield service
                    except BaseException as exc:  # re-raised below, outside the nurseries, unwrapped
                        body_error = exc
                    finally:
                        with trio.CancelScope(shield=True):
                            if service._handing_over is None:
                                await service._drain(settings.shutdown_grace if body_error is None else 0)
                            elif service._handing_over == "graceful" and body_error is None:
                                await service._let_running_end(settings.shutdown_grace)
                            elif writer is not None:
                                writer.seal()
                        service._stop_schedulers()
                        service.events_hub.close()  # every event stream ends after what it holds (E1)
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
