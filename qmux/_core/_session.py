"""The session actor: one Trio task per session, owning its job queue and its clocks.

Callers reach a session only through messages in its mailbox (`call` waits for the reply, as
in OTP's ``gen_server:call``); the scheduler and the job executions tell it what happened with
one-way messages (``cast``). Every handler is synchronous, so each message is handled whole,
and the actor's three clocks are deadlines on the one cancel scope it waits in:

* **max_time** (SPEC S10), set when its first job starts (S3);
* **ITTL** (S8, S9), set when an active session runs out of work;
* **idle at open** (S19), set at open and cleared by the first job.

Once the session is closed and its last running job has ended, the actor task returns and the
session answers every later message at once from its final state, so a handle stays usable
forever and nothing waits on a task that is gone.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, final

import structlog
import trio
from attrs import frozen

from ._backend import JobRequest
from ._errors import (
    CapacityError,
    ClosedReason,
    JobCancelledError,
    JobError,
    JobFailedError,
    QmuxError,
    SessionClosedError,
    SessionCrashedError,
    StorageError,
)
from ._ids import new_id
from ._jobs import JobRecord, JobStatus
from ._session_state import SessionState, status_text
from ._snapshots import SessionSnapshot
from ._validate import check_options, check_program_id

if TYPE_CHECKING:
    from ._journal import Ticket
    from ._scheduler import BackendScheduler
    from ._time import WallClock

__all__ = ["SessionActor"]

_log = structlog.get_logger("qmux")
#: messages an actor handles back to back before it lets other tasks run
_BURST = 64


# -- messages ----------------------------------------------------------------------------------


@frozen
class Submit:
    program_id: str
    inputs: Any
    options: dict[str, Any]


@frozen
class Close:
    pass


@frozen
class Cancel:
    pass


@frozen
class CancelJob:
    job: JobRecord


@frozen
class GetStatus:
    pass


@frozen
class GetDetails:
    pass


@frozen
class Granted:
    pass


@frozen
class JobFinished:
    job: JobRecord


_Message = Submit | Close | Cancel | CancelJob | GetStatus | GetDetails | Granted | JobFinished


@final
class _Reply:
    """A one-shot reply slot: the caller waits on it, the actor fills it once."""

    __slots__ = ("_event", "error", "value")

    def __init__(self) -> None:
        self._event = trio.Event()
        self.value: object = None
        self.error: QmuxError | None = None

    def send(self, value: object = None, error: QmuxError | None = None) -> None:
        self.value, self.error = value, error
        self._event.set()

    async def receive(self) -> object:
        await self._event.wait()
        if self.error is not None:
            raise self.error
        return self.value


_CLOSED_MESSAGES = {
    ClosedReason.CLOSED: "was closed",
    ClosedReason.CANCELLED: "was cancelled",
    ClosedReason.MAX_TIME: "reached its max_time",
    ClosedReason.ROOT_JOB_CANCELLED: "failed because its root job was cancelled",
    ClosedReason.IDLE_AT_OPEN: "received no job within its idle-at-open delay and closed itself",
    ClosedReason.CRASHED: "crashed",
    ClosedReason.SERVICE_SHUTDOWN: "was closed because the service shut down",
}


@final
class SessionActor:
    """One session: its mailbox, its queue of jobs, its clocks and its history.

    Public methods are the *port* a `qmux.Session` handle uses; each sends one message and
    waits for the reply. Everything underscored runs inside the actor (or, once the actor
    has ended, inline against the final state).
    """

    def __init__(
        self,
        *,
        session_id: str,
        scheduler: BackendScheduler,
        max_time: float,
        clock: WallClock,
        idle_open_timeout: float,
        max_queued_jobs: int,
        max_mailbox: int,
        mode: str,
        register_job: Callable[[JobRecord], None],
        on_ended: Callable[[SessionActor], None],
        on_change: Callable[[SessionActor], object] | None = None,
        owner: str | None = None,
    ) -> None:
        self.session_id = session_id
        self.backend_name = scheduler.name
        self.max_time = max_time
        self.interactive_ttl = scheduler.config.interactive_ttl
        self.mode = mode
        #: who opened it: an opaque tag a front door sets (the HTTP server's tenant); its jobs inherit it
        self.owner = owner
        self.state = SessionState.OPEN
        self.accepting_jobs = True
        self.closed_reason: ClosedReason | None = None
        self.root_job_id: str | None = None
        self._scheduler = scheduler
        self._clock = clock
        self._max_queued_jobs = max_queued_jobs
        self._max_mailbox = max_mailbox
        self._register_job = register_job
        self._on_ended = on_ended
        self._on_change = on_change
        #: the journal batch that makes the opening durable; the first awaited call waits on it
        self.durable: Ticket | None = None
        self._queue: deque[JobRecord] = deque()
        self._running: set[JobRecord] = set()
        self._send, self._inbox = trio.open_memory_channel[tuple[_Message, _Reply | None]](math.inf)
        self._calls_waiting = 0
        self._ended = False
        #: the cancel scope the actor waits in, while it waits: `_notice` moves its deadline
        self._waiting: trio.CancelScope | None = None
        now = trio.current_time()
        self.opened_at = now
        self.started_at: float | None = None
        self.activated_at: float | None = None
        self.deactivated_at: float | None = None
        self.closed_at: float | None = None
        self.last_job_started: float | None = None
        self.last_job_completed: float | None = None
        self._max_time_deadline = math.inf
        self._ittl_deadline = math.inf
        self._idle_open_timeout = idle_open_timeout
        self._idle_deadline = now + idle_open_timeout
        self.timestamps: list[tuple[str, float]] = [(SessionState.OPEN.value, now)]
        self._log = _log.bind(session_id=session_id, backend=scheduler.name)
        self._log.info("session.opened", max_time=max_time, interactive_ttl=self.interactive_ttl, mode=mode)

    # -- the port: what handles call -------------------------------------------------------

    async def submit(self, program_id: str, inputs: Any, options: dict[str, Any] | None = None) -> JobRecord:
        """Queue a job; return once it is accepted and, with a journal, durable."""
        program_id, checked_options = check_program_id(program_id), check_options(options)
        if self.durable is not None:
            await self.durable.wait()
            self.durable = None
        job = await self._call(Submit(program_id, inputs, checked_options))
        assert isinstance(job, JobRecord)
        if job.durable is not None:
            try:
                await job.durable.wait()
            except StorageError:
                await self._cancel_job(job)  # not written, so not accepted: it must not run
                raise
        return job

    async def close(self) -> None:
        await self._call(Close())

    async def cancel(self) -> None:
        await self._call(Cancel())

    async def status(self) -> str:
        return str(await self._call(GetStatus()))

    async def details(self) -> dict[str, Any]:
        details = await self._call(GetDetails())
        assert isinstance(details, dict)
        return details

    def close_nowait(self) -> None:
        """Ask the session to close without waiting for the answer (service shutdown)."""
        self._cast(Close())

    async def _cancel_job(self, job: JobRecord) -> None:
        await self._call(CancelJob(job))

    # -- what the scheduler calls (one-way) ------------------------------------------------

    def granted(self) -> None:
        self._notice(Granted())

    def job_finished(self, job: JobRecord) -> None:
        self._notice(JobFinished(job))

    # -- messaging ---------------------------------------------------------------------------

    async def _call(self, message: _Message) -> object:
        if self._ended:  # the actor is gone: its final state answers at once
            return self._handle(message)
        if self._waiting is not None and not self._calls_waiting:
            # The actor is parked on an empty mailbox: handling the message here, whole and at
            # once, is what it would do next, without two trips through Trio's scheduler.
            await trio.lowlevel.checkpoint_if_cancelled()
            if self._waiting is not None and not self._calls_waiting and not self._ended:
                try:
                    value = self._serve(message)
                finally:
                    self._rearm()
                await trio.lowlevel.cancel_shielded_checkpoint()
                return value
        if self._calls_waiting >= self._max_mailbox:
            raise CapacityError(
                f"session {self.session_id} has {self._calls_waiting} requests waiting, its mailbox limit; "
                "retry later or raise max_mailbox"
            )
        reply = _Reply()
        self._calls_waiting += 1
        self._send.send_nowait((message, reply))
        return await reply.receive()

    def _cast(self, message: _Message) -> None:
        if self._ended:
            self._handle(message)
        else:
            self._send.send_nowait((message, None))

    def _notice(self, message: Granted | JobFinished) -> None:
        """Take in at once what the scheduler reports (the backend granted, a job ended).

        These are facts, not requests: the actor learns them the moment they happen rather
        than through its mailbox, so that its next job starts without a trip through Trio's
        scheduler. Handlers are synchronous and the actor task is parked between messages, so
        the message is still handled whole; then the actor's wait is moved to its new deadline,
        or ended if the session has nothing left to do.
        """
        if self._ended:
            self._handle(message)
            return
        try:
            self._handle(message)
        except Exception as exc:
            self._crash(exc)
        self._rearm()

    def _rearm(self) -> None:
        """After a message handled outside the actor's task: move its wait to the new deadline, or end it."""
        scope = self._waiting
        if scope is None:
            return  # the actor is not waiting: it reads its clocks at the top of its loop
        if self.state is SessionState.CLOSED and not self._running:
            scope.cancel()
        else:
            deadline = min(self._max_time_deadline, self._ittl_deadline, self._idle_deadline)
            if deadline != scope.deadline:
                scope.deadline = deadline

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The actor's life: handle messages and deadlines until closed with nothing running."""
        task_status.started()
        burst = 0
        try:
            while True:
                self._on_deadlines()
                if self.state is SessionState.CLOSED and not self._running:
                    break
                received: tuple[_Message, _Reply | None] | None = None
                if burst < _BURST:  # handle what is already waiting without a trip through the scheduler
                    try:
                        received = self._inbox.receive_nowait()
                        burst += 1
                    except trio.WouldBlock:
                        pass
                if received is None:
                    burst = 0
                    with trio.move_on_at(
                        min(self._max_time_deadline, self._ittl_deadline, self._idle_deadline)
                    ) as self._waiting:
                        received = await self._inbox.receive()
                    self._waiting = None
                if received is None:
                    continue  # a clock ran out: the top of the loop acts on it
                message, reply = received
                if reply is not None:
                    self._calls_waiting -= 1
                self._answer(message, reply)
        except Exception as exc:  # a bug outside any one message (the clocks): the session crashes
            self._crash(exc)
        finally:
            self._end()

    def _answer(self, message: _Message, reply: _Reply | None) -> None:
        try:
            value = self._serve(message)
        except QmuxError as error:  # a refusal, or the crash error
            if reply is not None:
                reply.send(error=error)
        else:
            if reply is not None:
                reply.send(value)

    def _serve(self, message: _Message) -> object:
        """Handle one message: its value, or the refusal it raises. A bug crashes the session
        (its jobs and callers fail, the others go on) and raises the crash error instead."""
        try:
            return self._handle(message)
        except (SessionClosedError, CapacityError, JobError):  # an answer, not a crash
            raise
        except Exception as exc:
            raise self._crash(exc) from exc

    def _end(self) -> None:
        """The actor task is returning: settle every job and every caller still waiting."""
        self._ended = True
        if self.state is not SessionState.CLOSED:  # cancelled from outside: the service shut down
            self._terminate(ClosedReason.SERVICE_SHUTDOWN)
        self._send.close()
        while True:
            try:
                message, reply = self._inbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            if reply is not None:
                self._calls_waiting -= 1
            self._answer(message, reply)
        self._on_ended(self)
        self._log.debug("session.actor_ended")

    def _crash(self, exc: Exception) -> SessionCrashedError:
        """A bug in the actor: fail this session's jobs and callers, leave the others alone.

        Returns the error that the call which met the bug answers with.
        """
        self._log.error("session.crashed", exc_info=exc)
        error = self._closed_error(ClosedReason.CRASHED)
        assert isinstance(error, SessionCrashedError)
        error.__cause__ = exc
        now = trio.current_time()
        for job in list(self._running):
            job.finish(JobStatus.ERROR, now, error=_job_failed(job, str(error), "session_crashed"))
            if job.cancel_scope is not None:
                job.cancel_scope.cancel()
        self._running.clear()
        self._terminate(ClosedReason.CRASHED)
        return error

    # -- handlers (synchronous: one message is handled whole) -------------------------------

    def _handle(self, message: _Message) -> object:
        match message:
            case Submit(program_id, inputs, options):
                return self._on_submit(program_id, inputs, options)
            case JobFinished(job):
                self._on_job_finished(job)
            case Granted():
                self._on_granted()
            case GetStatus():
                self._on_deadlines()
                return status_text(self.state, self.accepting_jobs)
            case GetDetails():
                self._on_deadlines()
                return self._details()
            case CancelJob(job):
                self._on_cancel_job(job)
            case Close():
                self._on_close()
            case Cancel():
                if self.state is not SessionState.CLOSED:
                    self._terminate(ClosedReason.CANCELLED)
        return None

    def _on_submit(self, program_id: str, inputs: Any, options: dict[str, Any]) -> JobRecord:
        self._on_deadlines()
        if not self.accepting_jobs:
            raise self._closed_error(self.closed_reason or ClosedReason.CLOSED)
        if len(self._queue) >= self._max_queued_jobs:
            raise CapacityError(
                f"session {self.session_id} has {len(self._queue)} jobs queued, its limit; "
                "wait for some to finish or raise max_queued_jobs_per_session"
            )
        now = trio.current_time()
        is_root = self.root_job_id is None
        job_id = self.session_id if is_root else new_id()  # the root job's id is the session's (S14)
        if is_root:
            self.root_job_id = job_id
            self._idle_deadline = math.inf  # S19: it received a job
            self._changed()
        job = JobRecord(
            JobRequest(job_id, self.session_id, program_id, inputs, options),
            self._scheduler.name,
            now,
            self._cancel_job,
            owner=self.owner,
        )
        self._queue.append(job)
        self._scheduler.queued_jobs += 1
        self._register_job(job)
        self._log.debug("job.queued", job_id=job_id, program_id=program_id, root=is_root)
        self._ittl_deadline = math.inf
        self._dispatch()
        return job

    def _dispatch(self) -> None:
        """Run queued jobs if this session holds the backend; otherwise get in line for it."""
        scheduler = self._scheduler
        if scheduler.holder is not self:
            if self._queue:
                scheduler.claim(self)
            return
        while self._queue and scheduler.free_slots:
            job = self._queue.popleft()
            now = trio.current_time()
            if self.started_at is None:  # the session starts with its first job (S3, S10)
                self.started_at = now
                self._max_time_deadline = now + self.max_time
                self._log.info("session.started", max_time=self.max_time)
                self._changed()
            self.last_job_started = now
            self._running.add(job)
            scheduler.start(job, self)

    def _on_granted(self) -> None:
        if self._scheduler.holder is not self:
            return  # stale: we withdrew after the grant was sent
        if not self._queue or self.state is SessionState.CLOSED:
            self._scheduler.withdraw(self)
            return
        now = trio.current_time()
        self.activated_at = now
        self._set_state(SessionState.ACTIVE, now)
        self._log.info("session.activated")
        self._dispatch()

    def _on_job_finished(self, job: JobRecord) -> None:
        self._running.discard(job)
        now = job.finished_at if job.finished_at is not None else trio.current_time()
        self.last_job_completed = now
        self._changed()
        if self.state is SessionState.CLOSED:
            return
        if self._queue:
            self._dispatch()
        elif not self._running:
            if not self.accepting_jobs:  # closed by the user: done at once, no ITTL wait (S12)
                self._terminate(self.closed_reason or ClosedReason.CLOSED)
            elif self.state is SessionState.ACTIVE:
                self._ittl_deadline = now + self.interactive_ttl  # keep the backend for ITTL (S8)
                self._on_deadlines()

    def _on_cancel_job(self, job: JobRecord) -> None:
        if job.status.is_final:
            return  # cancelling a finished job is harmless (S16)
        is_root = job.job_id == self.root_job_id
        now = trio.current_time()
        if job.status is JobStatus.QUEUED:
            self._queue.remove(job)
            self._scheduler.queued_jobs -= 1
            job.finish(
                JobStatus.CANCELLED,
                now,
                error=JobCancelledError(f"job {job.job_id} was cancelled", job_id=job.job_id, reason="cancelled"),
            )
            self._log.info("job.cancelled", job_id=job.job_id)
        elif job.cancel_scope is not None:
            job.cancel_scope.cancel()  # the execution ends it as CANCELLED and tells us (J2)
        if is_root:
            self._terminate(ClosedReason.ROOT_JOB_CANCELLED)  # S14
        elif not self._queue and not self._running:
            if not self.accepting_jobs:
                self._terminate(self.closed_reason or ClosedReason.CLOSED)
            elif self._scheduler.holder is self:
                self._ittl_deadline = now + self.interactive_ttl
            else:
                self._scheduler.withdraw(self)

    def _on_close(self) -> None:
        if not self.accepting_jobs:
            return  # closing twice is harmless (S16)
        self.accepting_jobs = False
        self.closed_reason = ClosedReason.CLOSED
        if not self._queue and not self._running:
            self._terminate(ClosedReason.CLOSED)  # nothing left to run: closed at once (S12)
        else:
            self._changed()
            self._ittl_deadline = math.inf
            self._log.info("session.closing", queued=len(self._queue), running=len(self._running))

    # -- clocks ------------------------------------------------------------------------------

    def _on_deadlines(self) -> None:
        """Act on every clock that has run out by now."""
        now = trio.current_time()
        if now >= self._max_time_deadline and self.state is not SessionState.CLOSED:
            self._terminate(ClosedReason.MAX_TIME)  # S10
        if now >= self._idle_deadline and self.state is not SessionState.CLOSED:
            self._terminate(ClosedReason.IDLE_AT_OPEN)  # S19
        if now >= self._ittl_deadline:
            self._ittl_deadline = math.inf
            if self.state is SessionState.ACTIVE and not self._queue and not self._running:
                self._deactivate(now)

    def _deactivate(self, now: float) -> None:
        """No job within ITTL: hand the backend to the others (S9)."""
        self.deactivated_at = now
        self._set_state(SessionState.INACTIVE, now)
        self._scheduler.withdraw(self)
        self._log.info("session.deactivated", interactive_ttl=self.interactive_ttl)

    def _terminate(self, reason: ClosedReason) -> None:
        """Close for good: refuse new jobs, fail queued ones as `reason` says; running ones finish."""
        now = trio.current_time()
        self.accepting_jobs = False
        self.closed_reason = reason
        failure = self._closed_error(reason)
        status = JobStatus.CANCELLED if reason is ClosedReason.CANCELLED else JobStatus.ERROR
        for job in self._queue:
            message = f"job {job.job_id} did not run: {failure}"
            error: JobError
            if status is JobStatus.CANCELLED:
                error = JobCancelledError(message, job_id=job.job_id, reason=reason.value)
            else:
                error = _job_failed(job, message, reason.value)
            error.__cause__ = failure
            job.finish(status, now, error=error)
        self._scheduler.queued_jobs -= len(self._queue)
        self._queue.clear()
        self._max_time_deadline = self._ittl_deadline = self._idle_deadline = math.inf
        self._scheduler.withdraw(self)
        self.closed_at = now
        self._set_state(SessionState.CLOSED, now)
        self._log.info("session.closed", reason=reason.value, running=len(self._running))

    def _set_state(self, state: SessionState, now: float) -> None:
        if state is not self.state:
            self.state = state
            self.timestamps.append((state.value, now))
            self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self)

    # -- recovery ------------------------------------------------------------------------------

    def restore(self, row: SessionSnapshot, queued: list[JobRecord], to_trio: Callable[[float], float]) -> None:
        """Take up where a journal left off, before the actor runs (issue: restart recovery).

        The clocks are wall-clock: time spent down counts as elapsed, so a session whose
        max_time ran out meanwhile closes at once and fails its queued jobs (S10). A session
        that held its backend lost that hold with the process: it comes back deactivated.
        """

        def at(posix: float | None) -> float | None:
            return None if posix is None else to_trio(posix)

        now = trio.current_time()
        self.state = SessionState(row.state)
        self.accepting_jobs = row.accepting_jobs
        self.closed_reason = ClosedReason(row.closed_reason) if row.closed_reason else None
        self.root_job_id = row.root_job_id
        self.opened_at = to_trio(row.opened_at)
        self.started_at, self.activated_at = at(row.started_at), at(row.activated_at)
        self.deactivated_at, self.closed_at = at(row.deactivated_at), at(row.closed_at)
        self.last_job_started, self.last_job_completed = at(row.last_job_started), at(row.last_job_completed)
        self.timestamps = [(status, to_trio(posix)) for status, posix in row.timestamps]
        if self.started_at is not None:
            self._max_time_deadline = self.started_at + self.max_time
        self._idle_deadline = self.opened_at + self._idle_open_timeout if self.root_job_id is None else math.inf
        self._queue.extend(queued)
        self._scheduler.queued_jobs += len(queued)
        if self.state is SessionState.ACTIVE:
            self.deactivated_at = now
            self._set_state(SessionState.INACTIVE, now)
        self._log.info("session.recovered", state=self.state.value, queued=len(queued))
        self._on_deadlines()
        if self.state is not SessionState.CLOSED:
            if not self.accepting_jobs and not self._queue:
                self._terminate(self.closed_reason or ClosedReason.CLOSED)
            else:
                self._dispatch()

    # -- observing ---------------------------------------------------------------------------

    def snapshot(self, posix: Callable[[float], float]) -> SessionSnapshot:
        """What the journal keeps of this session (`posix` turns Trio times into POSIX seconds)."""

        def wall(at: float | None) -> float | None:
            return None if at is None else posix(at)

        return SessionSnapshot(
            session_id=self.session_id,
            backend=self.backend_name,
            max_time=self.max_time,
            mode=self.mode,
            state=self.state.value,
            accepting_jobs=self.accepting_jobs,
            closed_reason=self.closed_reason.value if self.closed_reason else None,
            root_job_id=self.root_job_id,
            opened_at=posix(self.opened_at),
            started_at=wall(self.started_at),
            activated_at=wall(self.activated_at),
            deactivated_at=wall(self.deactivated_at),
            closed_at=wall(self.closed_at),
            last_job_started=wall(self.last_job_started),
            last_job_completed=wall(self.last_job_completed),
            timestamps=tuple((status, posix(at)) for status, at in self.timestamps),
            owner=self.owner,
        )

    def _closed_error(self, reason: ClosedReason) -> SessionClosedError:
        text = f"session {self.session_id} {_CLOSED_MESSAGES[reason]} and accepts no jobs"
        if reason is ClosedReason.ROOT_JOB_CANCELLED:
            text = f"session {self.session_id} failed because its root job {self.root_job_id} was cancelled"
        kind = SessionCrashedError if reason is ClosedReason.CRASHED else SessionClosedError
        return kind(text, session_id=self.session_id, reason=reason, root_job_id=self.root_job_id)

    def usage_time(self, now: float) -> float:
        """Seconds from the first job's start to the last of inactive, closed, last completion (S18)."""
        if self.started_at is None:
            return 0.0
        if self.state is SessionState.ACTIVE or self._running:
            return now - self.started_at
        ends = [t for t in (self.deactivated_at, self.closed_at, self.last_job_completed) if t is not None]
        return max(ends, default=self.started_at) - self.started_at

    def _details(self) -> dict[str, Any]:
        now = trio.current_time()
        iso = self._clock.iso
        if self.started_at is None:
            active_timeout = self.max_time
        elif self.state is SessionState.CLOSED:
            active_timeout = max(0.0, (self.closed_at or now) - self.started_at)
            active_timeout = max(0.0, self.max_time - active_timeout)
        else:
            active_timeout = max(0.0, self._max_time_deadline - now)
        return {
            "id": self.session_id,
            "backend_name": self.backend_name,
            "interactive_timeout": self.interactive_ttl,
            "max_time": self.max_time,
            "active_timeout": active_timeout,
            "state": self.state.value,
            "accepting_jobs": self.accepting_jobs,
            "last_job_started": iso(self.last_job_started),
            "last_job_completed": iso(self.last_job_completed),
            "started_at": iso(self.started_at),
            "closed_at": iso(self.closed_at),
            "activated_at": iso(self.activated_at),
            "mode": self.mode,
            "usage_time": self.usage_time(now),
            "closed_reason": self.closed_reason.value if self.closed_reason else None,
            "timestamps": [{"status": status, "timestamp": iso(at)} for status, at in self.timestamps],
        }

    def jobs(self) -> Iterator[JobRecord]:
        """The jobs still queued or running (for introspection and tests)."""
        yield from self._queue
        yield from self._running


def _job_failed(job: JobRecord, message: str, reason: str) -> JobFailedError:
    return JobFailedError(message, job_id=job.job_id, reason=reason)
