"""The session actor: one Trio task per session, owning its job queue and its clocks.

Callers reach a session only through messages in its mailbox (`call` waits for the reply, as
in OTP's ``gen_server:call``); the scheduler and the job executions tell it what happened with
one-way notices. A message is one of the actor's handlers and its arguments; every handler is
synchronous, so each message is handled whole.

What the session's state is, and where each event takes it, is decided by its `SessionMachine`
(``_session_state.py``, a pure table); the actor owns what the machine does not: its mailbox,
its queue of jobs, the running ones, its hold on the scheduler, and crash handling. The
machine's three clocks (max_time S10, ITTL S8-S9, idle at open S19) come down to one deadline,
armed in the service's `SessionClocks` (``_clocks.py``), which tells the actor when it comes.

An idle session is what the cyclic garbage collector scans most often (a service may hold
100,000), so the actor is lean: slots, a mailbox that is a deque made only once a message has to
wait, its task parked directly rather than on a channel and in no cancel scope (its clocks are an
entry in its service's heap), the logger of its backend rather than one of its own, and a caller
waiting for a reply is woken directly, without an Event.

Once the session is closed and its last running job has ended, the actor task returns and the
session answers every later message at once from its final state, so a handle stays usable
forever and nothing waits on a task that is gone.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final, TypeVar, TypeVarTuple, final

import outcome
import trio

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
    from ._clocks import SessionClocks
    from ._journal import Ticket
    from ._scheduler import BackendScheduler
    from ._time import WallClock

__all__ = ["SessionActor"]

#: messages an actor handles back to back before it lets other tasks run
_BURST = 64
_CLOSED: Final = SessionState.CLOSED
_Args = TypeVarTuple("_Args")
_T = TypeVar("_T")


@final
class _Reply:
    """Where a caller waits for the actor's answer: the caller's own task, parked until the actor
    reschedules it with the answer (an `outcome`), once."""

    __slots__ = ("task",)

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task: trio.lowlevel.Task | None = task

    def send(self, answer: outcome.Outcome[object]) -> None:
        task, self.task = self.task, None
        if task is not None:
            trio.lowlevel.reschedule(task, answer)

    def abandon(self, _: object) -> trio.lowlevel.Abort:
        """The caller was cancelled while it waited: its message is still handled, the answer dropped."""
        self.task = None
        return trio.lowlevel.Abort.SUCCEEDED


#: one message: a handler of the actor, its arguments, and who waits for the answer (``None``: a cast)
_Message = tuple[Callable[..., object], tuple[object, ...], _Reply | None]


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

    __slots__ = (
        "__weakref__",
        "_accepted",
        "_calls_waiting",
        "_canceller",
        "_clock",
        "_clocks",
        "_ended",
        "_events",
        "_failed_job_id",
        "_ittl_lead",
        "_log",
        "_logs_debug",
        "_mailbox",
        "_max_mailbox",
        "_max_queued_jobs",
        "_max_time_lead",
        "_on_change",
        "_on_ended",
        "_parked",
        "_queue",
        "_register_job",
        "_running",
        "_scheduler",
        "_task",
        "_waiting",
        "_warned_ittl",
        "_warned_max_time",
        "armed",
        "backend_name",
        "batch",
        "durable",
        "exclusive",
        "machine",
        "owner",
        "root_job_id",
        "session_id",
        "terms",
    )

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
        clocks: SessionClocks,
        on_change: Callable[[SessionActor], object] | None = None,
        owner: str | None = None,
        events: EventHub | None = None,
        warnings: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        self.session_id = session_id
        self.backend_name = scheduler.name
        #: what it was opened with: max_time, mode, failure_policy, max_jobs
        self.terms = terms
        #: a batch (B1-B3); its jobs may run beside others' (B2): read on every job, so kept as flags
        self.batch = terms.is_batch
        #: whether its jobs must not run beside anyone else's: a dedicated session's (S7), not a batch's (B2)
        self.exclusive = not self.batch
        #: who opened it: an opaque tag a front door sets (the HTTP server's tenant); its jobs inherit it
        self.owner = owner
        self.root_job_id: str | None = None
        self.machine = SessionMachine(
            now=trio.current_time(),
            max_time=terms.max_time,
            interactive_ttl=scheduler.config.interactive_ttl,
            idle_open_timeout=idle_open_timeout,
            batch=self.batch,
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
        self._clocks = clocks
        self._max_queued_jobs = max_queued_jobs
        self._max_mailbox = max_mailbox
        self._register_job = register_job
        self._on_ended = on_ended
        self._on_change = on_change
        #: how its jobs' `cancel()` reaches it: made at its first job, then shared by all of them; a
        #: reference cycle while the actor lives, so `_end` lets go of it
        self._canceller: Callable[[JobRecord], Any] | None = None
        #: the journal batch that makes the opening durable; the first awaited call waits on it
        self.durable: Ticket | None = None
        self._queue: deque[JobRecord] = deque()
        self._running: set[JobRecord] = set()
        #: messages waiting to be handled; made when the first has to wait (most are handled at once)
        self._mailbox: deque[_Message] | None = None
        self._calls_waiting = 0
        self._ended = False
        #: the actor's task, and whether it is parked on its empty mailbox (then a message wakes it)
        self._task: trio.lowlevel.Task | None = None
        self._parked = False
        #: whether the actor is in its wait: callers are served in their own task, and whatever is
        #: handled there re-arms its clocks (`_rearm`); out of it, it arms them before it waits again
        self._waiting = False
        #: the deadline armed in `clocks` (``inf``: none)
        self.armed = math.inf
        #: its backend's logger (bound to the backend's name): every event also names the session
        self._log = scheduler.log
        self._logs_debug = scheduler.logs_debug
        self._log.info(
            "session.opened",
            session_id=session_id,
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
        program_id, checked_options = check_program_id(program_id), check_options(options)
        checked_tags = () if tags == () else check_tags(tags)
        if self.durable is not None:  # checked here: an await that returns at once still costs a coroutine
            await self.wait_durable()
        job = await self._call(self._on_submit, program_id, inputs, checked_options, checked_tags, schedule=False)
        if job.durable is not None:
            await job.wait_accepted()  # the call's one schedule point: the wait for the journal
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
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
        await self._call(self._fire, Event.CLOSE)

    async def cancel(self) -> None:
        await self._call(self._fire, Event.CANCEL)

    async def status(self) -> str:
        return await self._call(self._on_status)

    async def details(self) -> dict[str, Any]:
        return await self._call(self._on_details)

    def close_nowait(self) -> None:
        """Ask the session to close without waiting for the answer (service shutdown)."""
        if self._ended:
            self._fire(Event.CLOSE)
        else:
            self._post((self._fire, (Event.CLOSE,), None))

    async def _cancel_job(self, job: JobRecord) -> None:
        await self._call(self._on_cancel_job, job)

    # -- what the scheduler calls (one-way notices) -------------------------------------------
    #
    # These are facts, not requests: the actor learns them the moment they happen rather than
    # through its mailbox, so that its next job starts without a trip through Trio's scheduler.
    # Handlers are synchronous and the actor task is parked between messages, so the notice is
    # still handled whole; then the actor's wait is moved to its new deadline, or ended if the
    # session has nothing left to do.

    def granted(self) -> None:
        """The backend is now this session's (S7)."""
        try:
            self._on_granted()
        except Exception as exc:
            if self._ended:
                raise
            self._crash(exc)
        self._rearm()

    def job_finished(self, job: JobRecord) -> None:
        """One of its jobs has ended."""
        try:
            self._on_job_finished(job)
        except Exception as exc:
            if self._ended:
                raise
            self._crash(exc)
        self._rearm()

    # -- messaging ---------------------------------------------------------------------------

    async def _call(self, handler: Callable[[*_Args], _T], *args: *_Args, schedule: bool = True) -> _T:
        """Have the actor run `handler(*args)` and wait for its answer (or the refusal it raises).

        Handled inline, the call lets the other tasks run before it returns (a schedule point, as
        any Trio call has) unless `schedule` is false: the caller then makes one itself.
        """
        if self._ended:  # the actor is gone: its final state answers at once
            return handler(*args)
        if self._parked and self._waiting and not self._mailbox:
            # The actor is parked on an empty mailbox: handling the message here, whole and at
            # once, is what it would do next, without two trips through Trio's scheduler.
            await trio.lowlevel.checkpoint_if_cancelled()
            if self._parked and self._waiting and not self._mailbox:
                try:
                    value = self._serve(handler, args)
                finally:
                    self._rearm()
                if schedule:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                return value
        if self._calls_waiting >= self._max_mailbox:
            raise CapacityError(
                f"session {self.session_id} has {self._calls_waiting} requests waiting, its mailbox limit; "
                "retry later or raise max_mailbox"
            )
        reply = _Reply(trio.lowlevel.current_task())
        self._calls_waiting += 1
        self._post((handler, args, reply))
        answer: _T = await trio.lowlevel.wait_task_rescheduled(reply.abandon)
        return answer

    def _post(self, message: _Message) -> None:
        """Put `message` in the mailbox, and wake the actor if it is parked."""
        mailbox = self._mailbox
        if mailbox is None:
            mailbox = self._mailbox = deque()
        mailbox.append(message)
        self._wake()

    def _wake(self) -> None:
        """Reschedule the actor's task if it is parked."""
        if self._parked:
            self._parked = False
            assert self._task is not None
            trio.lowlevel.reschedule(self._task)

    def _unpark(self, _: object) -> trio.lowlevel.Abort:
        """The actor's wait was cancelled (the service stops): no message may wake it now."""
        self._parked = False
        return trio.lowlevel.Abort.SUCCEEDED

    def clock_ran_out(self, deadline: float) -> None:
        """The deadline it armed has come (its service's clocks tell it): act on it now, whole."""
        self.armed = math.inf
        if self._ended:
            return
        try:
            self._on_deadlines(self._scheduler.now())
        except Exception as exc:  # a bug in acting on its clocks: this session crashes, not the clocks
            self._crash(exc)
        self._rearm()

    def _rearm(self) -> None:
        """After something handled outside the actor's task: arm its next deadline, or end it."""
        if not self._waiting:
            return  # the actor is not waiting: it reads its clocks at the top of its loop
        machine = self.machine
        if machine.state is _CLOSED and not self._running:
            self._wake()  # nothing left to do: it ends
            return
        events = self._events
        if events is None or events.quiet:  # no warning to arm: `deadlines.earliest`, inline (twice a job)
            deadlines = machine.deadlines
            deadline = min(deadlines.max_time, deadlines.ittl, deadlines.idle_at_open)
        else:
            deadline = self._wait_deadline()
        if deadline != self.armed:
            self.armed = deadline
            self._clocks.arm(self, deadline)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The actor's life: handle messages and deadlines until closed with nothing running."""
        self._task = trio.lowlevel.current_task()
        task_status.started()
        burst = 0
        try:
            while True:
                self._on_deadlines(self._scheduler.now())
                if self.machine.state is _CLOSED and not self._running:
                    break
                if not self._mailbox or burst >= _BURST:
                    # wait for a message (its clocks are acted on while it waits); after a burst,
                    # only let the others run first
                    burst = 0
                    deadline = self._wait_deadline()
                    if deadline != self.armed:
                        self.armed = deadline
                        self._clocks.arm(self, deadline)
                    self._waiting = True
                    try:
                        if self._mailbox:
                            await trio.lowlevel.checkpoint()
                        else:
                            self._parked = True
                            await trio.lowlevel.wait_task_rescheduled(self._unpark)
                    finally:
                        self._waiting = False
                    if not self._mailbox:
                        continue  # it ends, or callers were served while it waited
                burst += 1
                assert self._mailbox is not None
                handler, args, reply = self._mailbox.popleft()
                if reply is not None:
                    self._calls_waiting -= 1
                self._answer(handler, args, reply)
        except Exception as exc:  # a bug outside any one message (the clocks): the session crashes
            self._crash(exc)
        finally:
            self._parked = False
            self._end()

    def _answer(self, handler: Callable[..., object], args: tuple[object, ...], reply: _Reply | None) -> None:
        try:
            value = self._serve(handler, args)
        except QmuxError as error:  # a refusal, or the crash error
            if reply is not None:
                reply.send(outcome.Error(error))
        else:
            if reply is not None:
                reply.send(outcome.Value(value))

    def _serve(self, handler: Callable[[*_Args], _T], args: tuple[*_Args]) -> _T:
        """Handle one message: its value, or the refusal it raises. A bug crashes the session
        (its jobs and callers fail, the others go on) and raises the crash error instead."""
        try:
            return handler(*args)
        except (SessionClosedError, CapacityError, JobError):  # an answer, not a crash
            raise
        except Exception as exc:
            raise self._crash(exc) from exc

    def _end(self) -> None:
        """The actor task is returning: settle every job and every caller still waiting."""
        self._ended = True
        self.armed = math.inf  # its clocks' entry is stale now
        self._task = self._canceller = None  # no reference cycle outlives the task: refcounting frees it
        if self.machine.state is not _CLOSED:  # cancelled from outside: the service shut down
            self._fire(Event.SHUTDOWN)
        mailbox, self._mailbox = self._mailbox, None
        while mailbox:
            handler, args, reply = mailbox.popleft()
            if reply is not None:
                self._calls_waiting -= 1
            self._answer(handler, args, reply)
        self._on_ended(self)
        if self._events is not None:
            self._events.end_session(self.session_id)  # its stream ends: closed, and its jobs ended (E1)
        self._log.debug("session.actor_ended", session_id=self.session_id)

    def _crash(self, exc: Exception) -> SessionCrashedError:
        """A bug in the actor: fail this session's jobs and callers, leave the others alone.

        Returns the error that the call which met the bug answers with.
        """
        self._log.error("session.crashed", session_id=self.session_id, exc_info=exc)
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

    def _on_status(self) -> str:
        self._on_deadlines(trio.current_time())
        return status_text(self.machine.state, self.machine.accepting_jobs)

    def _on_details(self) -> dict[str, Any]:
        self._on_deadlines(trio.current_time())
        return self._details()

    def _on_submit(self, program_id: str, inputs: Any, options: dict[str, Any], tags: tuple[str, ...]) -> JobRecord:
        now = self._scheduler.now()
        self._on_deadlines(now)
        machine = self.machine
        if not machine.accepting_jobs:
            raise self._closed_error(machine.closed_reason or ClosedReason.CLOSED)
        if len(self._queue) >= self._max_queued_jobs:
            raise CapacityError(
                f"session {self.session_id} has {len(self._queue)} jobs queued, its limit; "
                "wait for some to finish or raise max_queued_jobs_per_session"
            )
        is_root = self.root_job_id is None
        job_id = self.session_id if is_root else new_id()  # the root job's id is the session's (S14)
        machine.job_submitted()
        canceller = self._canceller
        if canceller is None:
            canceller = self._canceller = self._cancel_job
        if is_root:
            self.root_job_id = job_id
            self._changed()
        job = JobRecord(
            JobRequest(job_id, self.session_id, program_id, inputs, options),
            self.backend_name,
            now,
            canceller,
            owner=self.owner,
            clock=self._clock,
            tags=tags,
        )
        self._queue.append(job)
        self._scheduler.session_queued(1)
        self._register_job(job)
        if self._logs_debug:
            self._log.debug(
                "job.queued", session_id=self.session_id, job_id=job_id, program_id=program_id, root=is_root
            )
        self._accepted += 1
        if self._accepted == self.terms.max_jobs:  # its last: it takes no more, closes when drained (L1)
            self._fire(Event.LIMIT_REACHED)
        self._dispatch(now)
        return job

    def _dispatch(self, now: float) -> None:
        """Run queued jobs if this session holds the backend; otherwise get in line for it."""
        scheduler = self._scheduler
        queue = self._queue
        if scheduler.holder is not self:
            if queue:  # an active batch goes before the line (B2); anyone else waits in it
                scheduler.claim(self, priority=self.batch and self.machine.state is SessionState.ACTIVE)
            return
        free = scheduler.free_slots  # only `start` takes one, and no job ends while this runs
        while queue and free > 0:
            free -= 1
            job = queue.popleft()
            if self.machine.job_started(now):  # the first: the session starts (S3, S10)
                self._log.info("session.started", session_id=self.session_id, max_time=self.machine.max_time)
                self._changed()
            self._running.add(job)
            scheduler.start(job, self, now)
        if self.batch and not queue:
            scheduler.withdraw(self)  # a batch never holds its backend idle (B2)

    def _on_granted(self) -> None:
        if self._scheduler.holder is not self:
            return  # stale: we withdrew after the grant was sent
        if not self._queue or self.machine.is_closed:
            self._scheduler.withdraw(self)
            return
        self._fire(Event.GRANTED)
        self._dispatch(trio.current_time())

    def _on_job_finished(self, job: JobRecord) -> None:
        self._running.discard(job)
        # it has just ended: its end is now (the executor settles a job in the same step as it ends it)
        now = job.finished_at if job.finished_at is not None else trio.current_time()
        started = job.started_at if job.started_at is not None else now
        machine = self.machine
        machine.job_ended(now, ran_for=now - started)
        if job.status is JobStatus.ERROR and self.terms.failure_policy == "abort" and machine.state is not _CLOSED:
            self._failed_job_id = job.job_id  # the first failure closes it, as cancel() does (F1)
            self._fire(Event.JOB_FAILED)
        if machine.state is not _CLOSED:
            if self._queue:
                self._dispatch(now)
            elif not self._running:
                self._out_of_work(now)
        if self._on_change is not None:
            self._on_change(self)

    def _out_of_work(self, now: float) -> None:
        """Nothing queued or running any more: closed if draining (S12), ITTL if active (S8)."""
        before = self.machine.state
        if self.machine.out_of_work(now):
            self._moved(before, Event.DRAINED)
        elif self.machine.state is SessionState.ACTIVE:
            self._on_deadlines(now)
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
            self._log.info("job.cancelled", session_id=self.session_id, job_id=job.job_id)
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
        self._log.info("session.recovered", session_id=self.session_id, state=machine.state.value, queued=len(queued))
        self._on_deadlines(now)
        if not machine.is_closed:
            if self._queue:
                self._dispatch(now)
            else:
                self._out_of_work(now)

    def retire(self, machine: SessionMachine, root_job_id: str | None) -> None:
        """Stand for a session the journal holds as closed: never run, it answers from its final state."""
        self.machine, self.root_job_id = machine, root_job_id
        self._ended = True

    # -- the machine -------------------------------------------------------------------------

    def _on_deadlines(self, now: float) -> None:
        """Act on every clock that has run out by `now`, and warn of those about to (E1)."""
        machine = self.machine
        if machine.deadlines.expired(now) is not None:  # the common case is none: one call
            before = machine.state
            moved = machine.tick(now, has_work=self._has_work)
            if moved is not None:
                self._moved(before, moved)
                return
        events = self._events
        if events is not None and not events.quiet and events.watching(self.session_id):
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
        events = self._events
        if events is not None and not events.quiet and events.watching(self.session_id):
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
            self._log.info("session.deactivated", session_id=self.session_id, interactive_ttl=machine.interactive_ttl)
        elif machine.state is SessionState.ACTIVE and before is not SessionState.ACTIVE:
            self._log.info("session.activated", session_id=self.session_id)
        elif machine.intake is Intake.DRAINING:
            self._log.info(
                "session.closing", session_id=self.session_id, queued=len(self._queue), running=len(self._running)
            )
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
        self._log.info("session.closed", session_id=self.session_id, reason=reason.value, running=len(self._running))

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self)

    # -- observing ---------------------------------------------------------------------------

    def snapshot(self, epoch: float) -> SessionSnapshot:
        """What the journal keeps of this session (Trio times + `epoch` are POSIX seconds)."""

        def wall(at: float | None) -> float | None:
            return None if at is None else at + epoch

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
            opened_at=machine.opened_at + epoch,
            started_at=wall(machine.started_at),
            activated_at=wall(machine.activated_at),
            deactivated_at=wall(machine.deactivated_at),
            closed_at=wall(machine.closed_at),
            last_job_started=wall(machine.last_job_started),
            last_job_completed=wall(machine.last_job_completed),
            timestamps=tuple((status, at + epoch) for status, at in machine.timestamps),
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
        if self.batch:  # B3: only its jobs' run time, the running ones' so far included
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
