"""Jobs: their lifecycle, the record the core keeps, and the handle users hold."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, Protocol, final

import trio
from attrs import define, field, frozen

from ._errors import JobCancelledError, JobError, ServiceClosedError, StorageError
from ._events import Event, EventHub
from ._snapshots import ErrorSnapshot, JobSnapshot
from ._validate import check_tags
from ._waiters import enlist, wake

if TYPE_CHECKING:
    from ._backend import JobRequest
    from ._journal import Ticket
    from ._time import WallClock

__all__ = ["JOB_EVENT_KINDS", "Job", "JobChange", "JobObserver", "JobPort", "JobRecord", "JobStatus", "job_ended"]


class JobStatus(enum.Enum):
    """A job's lifecycle (SPEC J1); the three last states are terminal (SPEC J4)."""

    #: accepted, waiting for the backend (in its session's queue or the backend's line)
    QUEUED = "QUEUED"
    #: the backend is executing it
    RUNNING = "RUNNING"
    #: finished with a result
    DONE = "DONE"
    #: failed: the backend raised, or a session rule (max_time, root cancel, crash) failed it
    ERROR = "ERROR"
    #: cancelled, on its own or with its session
    CANCELLED = "CANCELLED"

    if TYPE_CHECKING:

        @property
        def is_final(self) -> bool:
            """Whether it is one of the three terminal states (an attribute of each member, set below)."""


# Read on every transition: a plain attribute is no call, where a property over a set of members
# would hash the member (in Python) each time.
for _status in JobStatus:
    vars(_status)["is_final"] = _status in (JobStatus.DONE, JobStatus.ERROR, JobStatus.CANCELLED)
del _status


#: the event kind of each status (SPEC E1)
JOB_EVENT_KINDS: Final = {status: "job." + status.value.lower() for status in JobStatus}
_ENDING_KINDS: Final = frozenset(JOB_EVENT_KINDS[status] for status in JobStatus if status.is_final)


def job_ended(event: Event) -> bool:
    """Whether `event` is a job's last: a job's stream ends with it."""
    return event.kind in _ENDING_KINDS


@final
@define(eq=False)
class JobRecord:
    """The core's record of one job. Only its owner (session actor or scheduler) moves it.

    `finish` is the one way to a terminal state: it is idempotent, so that whichever party
    ends a job first wins and every waiter is woken exactly once (SPEC J4).
    """

    request: JobRequest
    backend_name: str
    created_at: float
    #: how `cancel()` reaches the job's owner: the session actor, or the scheduler in job mode
    canceller: Callable[[JobRecord], Awaitable[None]]
    status: JobStatus = JobStatus.QUEUED
    started_at: float | None = None
    finished_at: float | None = None
    value: object = None
    error: JobError | None = None
    #: set while the backend executes it; cancelling it stops the job (SPEC J2)
    cancel_scope: trio.CancelScope | None = None
    #: who submitted it: an opaque tag a front door sets (the HTTP server's tenant), kept in the journal
    owner: str | None = None
    #: told of every change of status (the journal records it; `Service.observe_jobs` observers)
    observer: Callable[[JobRecord], object] | None = None
    #: told when its tags change (the journal keeps them, SPEC T1)
    retagged: Callable[[JobRecord], object] | None = None
    #: the journal batch that makes its acceptance durable; the submitter waits on it
    durable: Ticket | None = None
    #: how many times its backend began to execute it (R1: transient failures run it again)
    attempts: int = 0
    #: turns its Trio times into the UTC timestamps `metrics()` reports
    clock: WallClock | None = None
    #: labels its submitter gave it (SPEC T1)
    tags: tuple[str, ...] = ()
    #: where its transitions are published (SPEC E1); set when the service registers it
    events: EventHub | None = None
    #: how many jobs start before it on its backend (SPEC Q1); set by the service
    position: Callable[[JobRecord], int | None] | None = None
    #: the tasks waiting for its end, woken by `finish`; a list only while someone waits (no
    #: Event per job: most jobs have one waiter, and a finished job kept for lookup has none)
    _waiters: list[trio.lowlevel.Task] | None = field(default=None, init=False)

    @property
    def job_id(self) -> str:
        return self.request.job_id

    @property
    def session_id(self) -> str | None:
        return self.request.session_id

    @property
    def program_id(self) -> str:
        return self.request.program_id

    def mark_running(self, now: float) -> None:
        self.status = JobStatus.RUNNING
        self.started_at = now
        if self.observer is not None:
            self.observer(self)
        events = self.events
        if events is not None and not events.quiet:
            self.publish(now)

    def finish(self, status: JobStatus, now: float, *, value: object = None, error: JobError | None = None) -> bool:
        """Move to a terminal state and wake every waiter; ``False`` if it had already ended."""
        if self.status.is_final:
            return False
        self.status = status
        self.finished_at = now
        self.value = value
        self.error = error
        waiters, self._waiters = self._waiters, None
        wake(waiters)
        if self.observer is not None:
            self.observer(self)
        events = self.events
        if events is not None and not events.quiet:
            self.publish(now)
        return True

    def publish(self, now: float) -> None:
        """Tell the event hub of its status, reached at `now` (SPEC E1): ``job.queued``, ``job.running``, ..."""
        events, request = self.events, self.request
        if events is not None and events.wants(request.session_id, request.job_id):
            kind, data = JOB_EVENT_KINDS[self.status], self._event_data()
            events.deliver(kind, request.session_id, request.job_id, self.backend_name, self.owner, data, now)

    def _event_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"program_id": self.request.program_id}
        if self.error is not None:
            data["reason"] = self.error.reason
            data["message"] = str(self.error)
        return data

    async def wait(self) -> None:
        """Return once it has ended (a checkpoint, as any wait is, even if it already has)."""
        if self.status.is_final:
            await trio.lowlevel.checkpoint()
            return
        if self._waiters is None:
            self._waiters = []
        await trio.lowlevel.wait_task_rescheduled(enlist(self._waiters))

    async def wait_accepted(self) -> None:
        """Return once its acceptance is in the journal (at once without one), as a submitter must
        before it answers (SPEC J4); if it cannot be written, cancel it (it must not run) and raise
        the `StorageError`."""
        ticket = self.durable
        if ticket is None:
            return
        try:
            await ticket.wait()
        except StorageError:
            await self.canceller(self)
            raise

    def snapshot(self, epoch: float) -> JobSnapshot:
        """What the journal keeps of this job (Trio times + `epoch` are POSIX seconds)."""
        error = None
        if self.error is not None:
            kind = "cancelled" if isinstance(self.error, JobCancelledError) else "failed"
            error = ErrorSnapshot(kind, str(self.error), self.error.reason)
        request = self.request
        return JobSnapshot(
            job_id=request.job_id,
            session_id=request.session_id,
            backend=self.backend_name,
            program_id=request.program_id,
            inputs=request.inputs,
            options=dict(request.options),
            status=self.status.value,
            created_at=self.created_at + epoch,
            started_at=None if self.started_at is None else self.started_at + epoch,
            finished_at=None if self.finished_at is None else self.finished_at + epoch,
            value=self.value,
            error=error,
            owner=self.owner,
            attempts=self.attempts,
            tags=self.tags,
        )

    # -- the JobPort protocol ------------------------------------------------------------------

    async def get_status(self) -> str:
        return self.status.value

    async def get_result(self) -> Any:
        if self.status.is_final:  # `wait()`, inline: every round trip comes here
            await trio.lowlevel.checkpoint()
        else:
            if self._waiters is None:
                self._waiters = []
            await trio.lowlevel.wait_task_rescheduled(enlist(self._waiters))
        if self.error is not None:
            raise _copy_to_raise(self.error)
        return self.value

    async def cancel(self) -> None:
        if not self.status.is_final:
            await self.canceller(self)

    async def get_metrics(self) -> dict[str, Any]:
        return self.metrics(trio.current_time())

    async def get_queue_position(self) -> int | None:
        if self.status is not JobStatus.QUEUED or self.position is None:
            return None
        return self.position(self)

    async def get_tags(self) -> tuple[str, ...]:
        return self.tags

    async def set_tags(self, tags: tuple[str, ...]) -> None:
        self.tags = tags
        if self.retagged is not None:
            self.retagged(self)

    def subscribe(self, *, owner: str | None = None) -> AsyncIterator[Event]:
        """Its events from now: its status first, then every transition until it ends (SPEC E1)."""
        if self.events is None:
            raise ServiceClosedError(f"job {self.job_id} is not in a running service: it has no events")
        current = self.events.make(
            JOB_EVENT_KINDS[self.status],
            data=self._event_data(),
            session_id=self.request.session_id,
            job_id=self.request.job_id,
            backend=self.backend_name,
        )
        subscription = self.events.subscribe(job_id=self.job_id, owner=owner, first=[current], ends_with=job_ended)
        if self.status.is_final:
            subscription.end()
        return subscription

    def metrics(self, now: float) -> dict[str, Any]:
        """IBM's ``job.metrics()`` shape (SPEC U1): timestamps, usage, plus queue time and attempts."""
        iso = self.clock.iso if self.clock is not None else _no_time
        started, finished = self.started_at, self.finished_at
        ran = 0.0 if started is None else (finished if finished is not None else now) - started
        queued_until = started if started is not None else (finished if finished is not None else now)
        return {
            "timestamps": {"created": iso(self.created_at), "running": iso(started), "finished": iso(finished)},
            "usage": {"quantum_seconds": ran, "seconds": ran},
            "queue_seconds": max(0.0, queued_until - self.created_at),
            "attempts": self.attempts,
        }


@final
@frozen
class JobChange:
    """A job started or ended: what `Service.observe_jobs` observers are told, as it happens.

    Plain values, cheap to make: an observer (a metrics exporter, say) counts from them without
    looking the job up.
    """

    job_id: str
    backend: str
    #: the tag its front door gave it (the HTTP server's tenant); ``None`` in process
    owner: str | None
    #: ``RUNNING`` when it started; its final status when it ended
    status: JobStatus
    #: seconds from its submission until it started (or, if it never did, until it ended)
    queue_seconds: float
    #: seconds it has run (all its attempts); ``None`` if it never started
    run_seconds: float | None

    @classmethod
    def of(cls, job: JobRecord) -> JobChange:
        """`job` now: told only when it starts (``started_at`` set) or ends (``finished_at`` set)."""
        started, finished = job.started_at, job.finished_at
        queued_until = started if started is not None else finished
        return cls(
            job.request.job_id,
            job.backend_name,
            job.owner,
            job.status,
            0.0 if queued_until is None else max(0.0, queued_until - job.created_at),
            None if started is None else (started if finished is None else finished) - started,
        )


#: told of each job's start and end, inline: must be cheap (one that raises is logged, `Service.observe_jobs`)
JobObserver = Callable[[JobChange], None]


class JobPort(Protocol):
    """What a `Job` handle talks to: a local record, or a remote job over HTTP."""

    @property
    def job_id(self) -> str: ...
    @property
    def session_id(self) -> str | None: ...
    @property
    def program_id(self) -> str: ...
    @property
    def backend_name(self) -> str: ...

    async def get_status(self) -> str: ...
    async def get_result(self) -> Any: ...
    async def cancel(self) -> None: ...
    async def get_metrics(self) -> dict[str, Any]: ...
    async def get_queue_position(self) -> int | None: ...
    async def get_tags(self) -> tuple[str, ...]: ...
    async def set_tags(self, tags: tuple[str, ...]) -> None: ...
    def subscribe(self) -> AsyncIterator[Event]: ...


@final
class Job:
    """A handle on one submitted job (SPEC J1), the same for local and remote services."""

    __slots__ = ("_port",)

    def __init__(self, port: JobPort) -> None:
        self._port = port

    @property
    def job_id(self) -> str:
        return self._port.job_id

    @property
    def session_id(self) -> str | None:
        """The session the job belongs to; ``None`` in job mode."""
        return self._port.session_id

    @property
    def program_id(self) -> str:
        return self._port.program_id

    @property
    def backend_name(self) -> str:
        return self._port.backend_name

    async def status(self) -> str:
        """One of ``QUEUED``, ``RUNNING``, ``DONE``, ``ERROR``, ``CANCELLED``."""
        return await self._port.get_status()

    async def result(self) -> Any:
        """Wait for the job to end; return its result or raise its `JobError`."""
        return await self._port.get_result()

    async def cancel(self) -> None:
        """Remove a queued job, or stop a running one (SPEC J2); harmless once it ended (S16)."""
        await self._port.cancel()

    async def queue_position(self) -> int | None:
        """How many jobs will start before it on its backend (0: it is next); ``None`` once it
        runs or has ended (SPEC Q1)."""
        return await self._port.get_queue_position()

    async def tags(self) -> list[str]:
        """Its labels (SPEC T1)."""
        return list(await self._port.get_tags())

    async def update_tags(self, tags: Iterable[str]) -> None:
        """Replace its labels (SPEC T1); `service.jobs(tags=...)` filters on them."""
        await self._port.set_tags(check_tags(tags))

    def events(self) -> AsyncIterator[Event]:
        """Its status now, then every transition until it ends (SPEC E1): ``job.queued``,
        ``job.running``, then one of ``job.done``, ``job.error``, ``job.cancelled``."""
        return self._port.subscribe()

    async def metrics(self) -> dict[str, Any]:
        """IBM's shape (SPEC U1): ``timestamps`` (created, running, finished), ``usage``
        (quantum_seconds, seconds), plus ``queue_seconds`` and ``attempts`` (R1)."""
        return await self._port.get_metrics()

    def __repr__(self) -> str:
        return f"<qmux.Job {self.job_id} program={self.program_id!r} session={self.session_id}>"


def _no_time(_: float | None) -> None:
    return None


def _copy_to_raise(error: JobError) -> JobError:
    """A copy of a job's error for one caller to raise: same type, message, fields and cause.

    Raised, an exception takes a traceback whose frames hold their locals, the job among them
    (``get_result``'s ``self``, a `Job` handle's port): raising the error the job keeps would make
    a reference cycle (job, error, traceback, frame, job) that only the cyclic collector frees,
    once per failed job whose result was asked for. The job keeps an error that is never raised.
    """
    kind = type(error)
    copy = kind.__new__(kind)
    copy.args = error.args
    copy.__dict__.update(vars(error))  # job_id, reason, and whatever a subclass or add_note() put there
    copy.__cause__ = error.__cause__
    copy.__suppress_context__ = error.__suppress_context__
    return copy
