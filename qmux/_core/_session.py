"""The session actor: one Trio task per session, owning its job queue and its clocks.

Callers reach a session only through messages in its mailbox (`call` waits for the reply, as
in OTP's ``gen_server:call``); the scheduler and the job executions tell it what happened with
one-way messages (``cast``). Every handler is synchronous, so each message is handled whole.

What the session's state is, and where each event takes it, is decided by its `SessionMachine`
(``_session_state.py``, a pure table); the actor owns what the machine does not: its mailbox,
its queue of jobs, the running ones, its hold on the scheduler, and crash handling. The
machine's three clocks (max_time S10, ITTL S8-S9, idle at open S19) are the deadline of the one
cancel scope the actor waits in.

Once the session is closed and its last running job has ended, the actor task returns and the
session answers every later message at once from its final state, so a handle stays usable
forever and nothing waits on a task that is gone.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, final

import structlog
import trio
from attrs import frozen

from ._backend import JobRequest
from ._checks import SessionTerms
from ._errors import (
    CapacityError,
    ClosedReason,
    JobCancelledError,
    JobError,
    JobFailedError,
    QmuxError,
    ServiceClosedError,
    SessionClosedError,
    SessionCrashedError,
    StorageError,
)
from ._events import Event as StateEvent
from ._events import EventHub
from ._ids import new_id
from ._jobs import JobRecord, JobStatus
from ._session_state import Event, Intake, SessionMachine, SessionState, status_text
from ._snapshots import SessionSnapshot
from ._validate import check_options, check_program_id, check_tags

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
    tags: tuple[str, ...] = ()


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
    ClosedReason.JOB_FAILED: "was closed because one of its jobs failed",
    ClosedReason.MAX_JOBS: "accepted its max_jobs",
    ClosedReason.CRASHED: "crashed",
    ClosedReason.SERVICE_SHUTDOWN: "was closed because the service shut down",
}


@final
class SessionActor:
    """One session: its mailbox, its queue of jobs, its state machine.

    Public methods are the *port* a `qmux.Session` handle uses; each sends one message and
    waits for the reply. Everything underscored runs inside the actor (or, once the actor
    has ended, inline against the final state).
    """

    def __init__(
        self,
        *,
        session_id: str,
        scheduler: BackendScheduler,
        terms: SessionTerms,
        clock: WallClock,
        idle_open_timeout: float,
        max_queued_jobs: int,
        max_mailbox: int,
        register_job: Callable[[JobRecord], None],
        on_ended: Callable[[SessionActor], None],
        on_change: Callable[[SessionActor], object] | None = None,
        owner: str | None = None,
        events: EventHub | None = None,
        warnings: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        self.session_id = session_id
        self.backend_name = scheduler.name
        #: what it was opened with: max_time, mode, failure_policy, max_jobs
        self.terms = terms
        #: who opened it: an opaque tag a front door sets (the HTTP server's tenant); its jobs inherit it
        self.owner = owner
        self.root_job_id: str | None = None
        self.machine = SessionMachine(
            now=trio.current_time(),
            max_time=terms.max_time,
            interactive_ttl=scheduler.config.interactive_ttl,
            idle_open_timeout=idle_open_timeout,
            batch=terms.is_batch,
        )
        #: jobs it has accepted (L1 counts them)
        self._accepted = 0
        #: the job whose failure closed it (F1)
        self._failed_job_id: str | None = None
        self._events = events
        #: leads of the ITTL and max_time warnings (E1), and the deadlines already warned of
        self._ittl_lead, self._max_time_lead = warnings
        self._warned_ittl = self._warned_max_time = math.nan
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
        self._log = _log.bind(session_id=session_id, backend=scheduler.name)
        self._log.info(
            "session.opened",
            max_time=terms.max_time,
            interactive_ttl=scheduler.config.interactive_ttl,
            mode=terms.mode,
            failure_policy=terms.failure_policy,
            max_jobs=terms.max_jobs,
        )

    @property
    def state(self) -> SessionState:
        return self.machine.state

    @property
    def exclusive(self) -> bool:
        """Whether its jobs must not run beside anyone else's: a dedicated session's (S7), not a batch's (B2)."""
        return not self.terms.is_batch

    @property
    def queued(self) -> int:
        return len(self._queue)

    def queue_index(self, job: JobRecord) -> int:
        try:
            return self._queue.index(job)
        except ValueError:
            return 0

    @property
    def max_time_deadline(self) -> float:
        """When its max_time runs out (Trio time; ``inf`` before it starts): retries stop there (R1)."""
        return self.machine.deadlines.max_time

    @property
    def _has_work(self) -> bool:
        return bool(self._queue or self._running)

    # -- the port: what handles call -------------------------------------------------------

    async def submit(
        self, program_id: str, inputs: Any, options: dict[str, Any] | None = None, tags: Iterable[str] = ()
    ) -> JobRecord:
        """Queue a job; return once it is accepted and, with a journal, durable."""
        program_id, checked_options, checked_tags = (
            check_program_id(program_id),
            check_options(options),
            check_tags(tags),
        )
        if self.durable is not None:  # checked here: an await that returns at once still costs a coroutine
            await self.wait_durable()
        job = await self._call(Submit(program_id, inputs, checked_options, checked_tags))
        assert isinstance(job, JobRecord)
        if job.durable is not None:
            await job.wait_accepted()
        return job

    async def wait_durable(self) -> None:
        """Return once the session's opening is in the journal (at once without one).

        A front door answers only then, as it does for a job (SPEC J4: what is acknowledged
        survives). If it cannot be written the session is cancelled and `StorageError` raised.
        """
        ticket = self.durable
        if ticket is None:
            return
        try:
            await ticket.wait()
        except StorageError:
            await self.cancel()  # never durable, so never accepted: it must not run
            raise
        self.durable = None

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
        if self.machine.is_closed and not self._running:
            scope.cancel()
        else:
            deadline = self._wait_deadline()
            if deadline != scope.deadline:
                scope.deadline = deadline

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The actor's life: handle messages and deadlines until closed with nothing running."""
        task_status.started()
        burst = 0
        try:
            while True:
                self._on_deadlines()
                if self.machine.is_closed and not self._running:
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
                    with trio.move_on_at(self._wait_deadline()) as self._waiting:
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
        if not self.machine.is_closed:  # cancelled from outside: the service shut down
            self._fire(Event.SHUTDOWN)
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
        if self._events is not None:
            self._events.end_session(self.session_id)  # its stream ends: closed, and its jobs ended (E1)
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
        if self.machine.fire(Event.CRASHED, now):  # straight to the machine: the bug may be in `_fire`
            self._closed(now)
            self._changed()
        return error

    # -- handlers (synchronous: one message is handled whole) -------------------------------

    def _handle(self, message: _Message) -> object:
        match message:
            case Submit(program_id, inputs, options, tags):
                return self._on_submit(program_id, inputs, options, tags)
            case JobFinished(job):
                self._on_job_finished(job)
            case Granted():
                self._on_granted()
            case GetStatus():
                self._on_deadlines()
                return status_text(self.machine.state, self.machine.accepting_jobs)
            case GetDetails():
                self._on_deadlines()
                return self._details()
            case CancelJob(job):
                self._on_cancel_job(job)
            case Close():
                self._fire(Event.CLOSE)
            case Cancel():
                self._fire(Event.CANCEL)
        return None

    def _on_submit(
        self, program_id: str, inputs: Any, options: dict[str, Any], tags: tuple[str, ...] = ()
    ) -> JobRecord:
        self._on_deadlines()
        if not self.machine.accepting_jobs:
            raise self._closed_error(self.machine.closed_reason or ClosedReason.CLOSED)
        if len(self._queue) >= self._max_queued_jobs:
            raise CapacityError(
                f"session {self.session_id} has {len(self._queue)} jobs queued, its limit; "
                "wait for some to finish or raise max_queued_jobs_per_session"
            )
        now = trio.current_time()
        is_root = self.root_job_id is None
        job_id = self.session_id if is_root else new_id()  # the root job's id is the session's (S14)
        self.machine.job_submitted()
        if is_root:
            self.root_job_id = job_id
            self._changed()
        job = JobRecord(
            JobRequest(job_id, self.session_id, program_id, inputs, options),
            self._scheduler.name,
            now,
            self._cancel_job,
            owner=self.owner,
            clock=self._clock,
            tags=tags,
        )
        self._queue.append(job)
        self._scheduler.session_queued(1)
        self._register_job(job)
        self._log.debug("job.queued", job_id=job_id, program_id=program_id, root=is_root)
        self._accepted += 1
        if self._accepted == self.terms.max_jobs:  # its last: it takes no more, closes when drained (L1)
            self._fire(Event.LIMIT_REACHED)
        self._dispatch()
        return job

    def _dispatch(self) -> None:
        """Run queued jobs if this session holds the backend; otherwise get in line for it."""
        scheduler = self._scheduler
        if scheduler.holder is not self:
            if self._queue:  # an active batch goes before the line (B2); anyone else waits in it
                scheduler.claim(self, priority=self.terms.is_batch and self.machine.state is SessionState.ACTIVE)
            return
        while self._queue and scheduler.free_slots:
            job = self._queue.popleft()
            if self.machine.job_started(trio.current_time()):  # the first: the session starts (S3, S10)
                self._log.info("session.started", max_time=self.machine.max_time)
                self._changed()
            self._running.add(job)
            scheduler.start(job, self)
        if self.terms.is_batch and not self._queue:
            scheduler.withdraw(self)  # a batch never holds its backend idle (B2)

    def _on_granted(self) -> None:
        if self._scheduler.holder is not self:
            return  # stale: we withdrew after the grant was sent
        if not self._queue or self.machine.is_closed:
            self._scheduler.withdraw(self)
            return
        self._fire(Event.GRANTED)
        self._dispatch()

    def _on_job_finished(self, job: JobRecord) -> None:
        self._running.discard(job)
        now = job.finished_at if job.finished_at is not None else trio.current_time()
        started = job.started_at if job.started_at is not None else now
        self.machine.job_ended(now, ran_for=now - started)
        if job.status is JobStatus.ERROR and self.terms.failure_policy == "abort" and not self.machine.is_closed:
            self._failed_job_id = job.job_id  # the first failure closes it, as cancel() does (F1)
            self._fire(Event.JOB_FAILED)
        if not self.machine.is_closed:
            if self._queue:
                self._dispatch()
            elif not self._running:
                self._out_of_work(now)
        self._changed()

    def _out_of_work(self, now: float) -> None:
        """Nothing queued or running any more: closed if draining (S12), ITTL if active (S8)."""
        before = self.machine.state
        if self.machine.out_of_work(now):
            self._moved(before, Event.DRAINED)
        elif self.machine.state is SessionState.ACTIVE:
            self._on_deadlines()
        else:
            self._scheduler.withdraw(self)  # it waited in line for jobs it no longer has

    def _on_cancel_job(self, job: JobRecord) -> None:
        if job.status.is_final:
            return  # cancelling a finished job is harmless (S16)
        now = trio.current_time()
        if job.status is JobStatus.QUEUED:
            self._queue.remove(job)
            self._scheduler.session_dropped(1)
            job.finish(
                JobStatus.CANCELLED,
                now,
                error=JobCancelledError(f"job {job.job_id} was cancelled", job_id=job.job_id, reason="cancelled"),
            )
            self._log.info("job.cancelled", job_id=job.job_id)
        elif job.cancel_scope is not None:
            job.cancel_scope.cancel()  # the execution ends it as CANCELLED and tells us (J2)
        if job.job_id == self.root_job_id:
            self._fire(Event.ROOT_JOB_CANCELLED)  # S14
        elif not self._has_work:
            self._out_of_work(now)

    def resume(self, machine: SessionMachine, root_job_id: str | None, queued: list[JobRecord]) -> None:
        """Take up where a journal left off, before the actor runs (``_recovery.py`` made `machine`).

        A session that held its backend lost that hold with the process: it comes back
        deactivated, and its queued jobs wait in line again (S9).
        """
        now = trio.current_time()
        self.machine, self.root_job_id = machine, root_job_id
        self._queue.extend(queued)
        self._scheduler.session_queued(len(queued))
        machine.fire(Event.HOLD_LOST, now)
        self._log.info("session.recovered", state=machine.state.value, queued=len(queued))
        self._on_deadlines()
        if not machine.is_closed:
            if self._queue:
                self._dispatch()
            else:
                self._out_of_work(now)

    def retire(self, machine: SessionMachine, root_job_id: str | None) -> None:
        """Stand for a session the journal holds as closed: never run, it answers from its final state."""
        self.machine, self.root_job_id = machine, root_job_id
        self._ended = True
        self._send.close()

    # -- the machine -------------------------------------------------------------------------

    def _on_deadlines(self) -> None:
        """Act on every clock that has run out by now, and warn of those about to (E1)."""
        now = trio.current_time()
        before = self.machine.state
        moved = self.machine.tick(now, has_work=self._has_work)
        if moved is not None:
            self._moved(before, moved)
        elif self._events is not None and self._events.watching(self.session_id):
            self._warn(now)

    def _fire(self, event: Event) -> None:
        """Tell the machine of `event`, then do what its move asks of the actor."""
        before = self.machine.state
        if self.machine.fire(event, trio.current_time(), has_work=self._has_work):
            self._moved(before, event)

    # -- events (SPEC E1) --------------------------------------------------------------------

    def _wait_deadline(self) -> float:
        """When the actor must wake: the machine's next clock, or a warning's, if anyone listens."""
        deadline = self.machine.deadlines.earliest
        if self._events is not None and self._events.watching(self.session_id):
            deadline = min(deadline, *self._warning_times())
        return deadline

    def _warning_times(self) -> tuple[float, float]:
        deadlines = self.machine.deadlines
        ittl = deadlines.ittl - self._ittl_lead if self._ittl_lead and deadlines.ittl != self._warned_ittl else math.inf
        max_time = math.inf
        if self._max_time_lead and deadlines.max_time != self._warned_max_time:
            max_time = deadlines.max_time - self._max_time_lead
        return ittl, max_time

    def _warn(self, now: float) -> None:
        assert self._events is not None
        ittl_at, max_time_at = self._warning_times()
        deadlines = self.machine.deadlines
        if now >= ittl_at and not math.isinf(deadlines.ittl):
            self._warned_ittl = deadlines.ittl
            self._publish("session.ittl_warning", {"seconds_left": max(0.0, deadlines.ittl - now)})
        if now >= max_time_at and not math.isinf(deadlines.max_time):
            self._warned_max_time = deadlines.max_time
            self._publish("session.max_time_warning", {"seconds_left": max(0.0, deadlines.max_time - now)})

    def _publish(self, kind: str, data: dict[str, Any]) -> None:
        if self._events is not None:
            self._events.publish(
                kind, session_id=self.session_id, backend=self.backend_name, owner=self.owner, data=data
            )

    def _state_event_data(self, reason: str) -> dict[str, Any]:
        return {"reason": reason, "accepting_jobs": self.machine.accepting_jobs}

    def announce(self) -> None:
        """Tell listeners the session opened (E1)."""
        self._publish("session.open", self._state_event_data("opened"))

    def watch_started(self) -> None:
        """Someone began to listen: move the actor's wait to include warnings (E1)."""
        if not self._ended:
            self._rearm()

    def subscribe(self, *, owner: str | None = None) -> AsyncIterator[StateEvent]:
        """Its events from now (E1): its state first, then every change, until it has closed and
        its jobs have ended."""
        if self._events is None:
            raise ServiceClosedError(f"session {self.session_id} is not in a running service: it has no events")
        reason = self.machine.closed_reason.value if self.machine.closed_reason else "current"
        current = self._events.make(
            f"session.{self.machine.state.value}",
            data=self._state_event_data(reason),
            session_id=self.session_id,
            backend=self.backend_name,
        )
        subscription = self._events.subscribe(session_id=self.session_id, owner=owner, first=[current])
        if self._ended:
            subscription.end()
        else:
            self.watch_started()
        return subscription

    # -- moves -------------------------------------------------------------------------------

    def _moved(self, before: SessionState, why: Event) -> None:
        machine = self.machine
        if self._events is not None and machine.state is not before:
            reason = machine.closed_reason.value if machine.is_closed and machine.closed_reason else why.value
            self._publish(f"session.{machine.state.value}", self._state_event_data(reason))
        if machine.is_closed:
            self._closed(machine.closed_at if machine.closed_at is not None else trio.current_time())
        elif machine.state is SessionState.INACTIVE and before is SessionState.ACTIVE:
            self._scheduler.withdraw(self)  # no job within ITTL: hand the backend to the others (S9)
            self._log.info("session.deactivated", interactive_ttl=machine.interactive_ttl)
        elif machine.state is SessionState.ACTIVE and before is not SessionState.ACTIVE:
            self._log.info("session.activated")
        elif machine.intake is Intake.DRAINING:
            self._log.info("session.closing", queued=len(self._queue), running=len(self._running))
        self._changed()

    def _closed(self, now: float) -> None:
        """The session closed for good: fail its queued jobs as its reason says; running ones finish."""
        reason = self.machine.closed_reason or ClosedReason.CLOSED
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
        self._scheduler.session_dropped(len(self._queue))
        self._queue.clear()
        self._scheduler.withdraw(self)
        self._log.info("session.closed", reason=reason.value, running=len(self._running))

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self)

    # -- observing ---------------------------------------------------------------------------

    def snapshot(self, posix: Callable[[float], float]) -> SessionSnapshot:
        """What the journal keeps of this session (`posix` turns Trio times into POSIX seconds)."""

        def wall(at: float | None) -> float | None:
            return None if at is None else posix(at)

        machine = self.machine
        return SessionSnapshot(
            session_id=self.session_id,
            backend=self.backend_name,
            max_time=machine.max_time,
            mode=self.terms.mode,
            failure_policy=self.terms.failure_policy,
            max_jobs=self.terms.max_jobs,
            state=machine.state.value,
            accepting_jobs=machine.accepting_jobs,
            closed_reason=machine.closed_reason.value if machine.closed_reason else None,
            root_job_id=self.root_job_id,
            opened_at=posix(machine.opened_at),
            started_at=wall(machine.started_at),
            activated_at=wall(machine.activated_at),
            deactivated_at=wall(machine.deactivated_at),
            closed_at=wall(machine.closed_at),
            last_job_started=wall(machine.last_job_started),
            last_job_completed=wall(machine.last_job_completed),
            timestamps=tuple((status, posix(at)) for status, at in machine.timestamps),
            owner=self.owner,
        )

    def _closed_error(self, reason: ClosedReason) -> SessionClosedError:
        text = f"session {self.session_id} {_CLOSED_MESSAGES[reason]} and accepts no jobs"
        if reason is ClosedReason.ROOT_JOB_CANCELLED:
            text = f"session {self.session_id} failed because its root job {self.root_job_id} was cancelled"
        elif reason is ClosedReason.JOB_FAILED:
            text = (
                f"session {self.session_id} was closed because its job {self._failed_job_id} failed "
                "(failure_policy='abort') and accepts no jobs"
            )
        elif reason is ClosedReason.MAX_JOBS:
            text = f"session {self.session_id} accepted its max_jobs={self.terms.max_jobs} jobs and accepts no more"
        kind = SessionCrashedError if reason is ClosedReason.CRASHED else SessionClosedError
        return kind(text, session_id=self.session_id, reason=reason, root_job_id=self.root_job_id)

    def usage_time(self, now: float) -> float:
        """Seconds from the first job's start to the last of inactive, closed, last completion (S18)."""
        usage = self.machine.usage_time(now, running=bool(self._running))
        if self.terms.is_batch:  # B3: only its jobs' run time, the running ones' so far included
            usage += sum(now - job.started_at for job in self._running if job.started_at is not None)
        return usage

    def _details(self) -> dict[str, Any]:
        now = trio.current_time()
        iso = self._clock.iso
        machine = self.machine
        return {
            "id": self.session_id,
            "backend_name": self.backend_name,
            "interactive_timeout": machine.interactive_ttl,
            "max_time": machine.max_time,
            "active_timeout": machine.active_timeout(now),
            "state": machine.state.value,
            "accepting_jobs": machine.accepting_jobs,
            "last_job_started": iso(machine.last_job_started),
            "last_job_completed": iso(machine.last_job_completed),
            "started_at": iso(machine.started_at),
            "closed_at": iso(machine.closed_at),
            "activated_at": iso(machine.activated_at),
            "mode": self.terms.mode,
            "failure_policy": self.terms.failure_policy,
            "max_jobs": self.terms.max_jobs,
            "usage_time": self.usage_time(now),
            "closed_reason": machine.closed_reason.value if machine.closed_reason else None,
            "timestamps": [{"status": status, "timestamp": iso(at)} for status, at in machine.timestamps],
        }

    def jobs(self) -> Iterator[JobRecord]:
        """The jobs still queued or running (for introspection and tests)."""
        yield from self._queue
        yield from self._running


def _job_failed(job: JobRecord, message: str, reason: str) -> JobFailedError:
    return JobFailedError(message, job_id=job.job_id, reason=reason)
