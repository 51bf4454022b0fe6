"""Per-backend scheduling: who holds the backend, the waiting line, the running slots.

One `BackendScheduler` per backend decides what runs next under SPEC S7-S9:

* While a session *holds* the backend (it is active), only that session's jobs run; the
  session itself dispatches them, in the order it received them (S7), and keeps the backend
  through its ITTL gaps (S8) until it lets go (S9, close, cancel, max_time).
* Otherwise the backend serves its *waiting line* in arrival order: job-mode jobs, and
  sessions whose next job is waiting (an inactive or not-yet-started session is one entry).
  A session at the head of the line waits until the backend has drained, so that its jobs
  never interleave with anyone else's, then it becomes the holder.

The scheduler is plain synchronous state inside the service's Trio thread; it never awaits, so
its decisions are atomic. Executions run as tasks in the service's nursery.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Protocol, final

import outcome
import structlog
import trio

from ._errors import CapacityError, JobCancelledError, JobFailedError
from ._jobs import JobRecord, JobStatus

if TYPE_CHECKING:
    from ._backend import Backend, BackendConfig

__all__ = ["BackendScheduler", "Claimant"]

_log = structlog.get_logger("qmux")
#: jobs an executor may run back to back, when each is handed over as the last ends, before it yields
_STREAK = 16


class Claimant(Protocol):
    """A session as the scheduler sees it."""

    session_id: str

    def granted(self) -> None:
        """The backend is now this session's; it should dispatch its queued jobs."""

    def job_finished(self, job: JobRecord) -> None:
        """One of its jobs has ended (any terminal state)."""


@final
class BackendScheduler:
    """Owns one backend's waiting line and running slots."""

    def __init__(self, backend: Backend, *, nursery: trio.Nursery, max_waiting: int) -> None:
        self.backend = backend
        self.config: BackendConfig = backend.config
        self.holder: Claimant | None = None
        #: jobs queued for this backend, in sessions and in the line (the `pending_jobs` figure)
        self.queued_jobs = 0
        self._nursery = nursery
        self._max_waiting = max_waiting
        self._line: deque[JobRecord | Claimant] = deque()
        self._sessions_in_line: set[Claimant] = set()
        self._running: set[JobRecord] = set()
        #: how many of the running jobs belong to a session: job-mode jobs never run beside them
        self._session_jobs_running = 0
        self._idle = trio.lowlevel.ParkingLot()
        #: executors with no job, ready for the next one
        self._parked: list[_Executor] = []
        self._shut_down = False
        self._log = _log.bind(backend=backend.name)

    @property
    def name(self) -> str:
        return self.backend.name

    def pending_jobs(self) -> int:
        return self.queued_jobs

    @property
    def running_count(self) -> int:
        return len(self._running)

    @property
    def free_slots(self) -> int:
        return self.config.concurrency - len(self._running)

    def waiting_line(self) -> list[JobRecord | Claimant]:
        """A copy of the line, head first (for tests and introspection)."""
        return list(self._line)

    # -- called by sessions ----------------------------------------------------------------

    def claim(self, session: Claimant) -> None:
        """Put a session with a waiting job in line (or at once in front, if the backend is idle)."""
        if session is self.holder or session in self._sessions_in_line:
            return
        self._line.append(session)
        self._sessions_in_line.add(session)
        self._pump()

    def withdraw(self, session: Claimant) -> None:
        """The session has nothing to run any more: take it out of line, or let go of the backend."""
        if session is self.holder:
            self.holder = None
        elif session in self._sessions_in_line:
            self._sessions_in_line.discard(session)
            self._line.remove(session)
        self._pump()

    def start(self, job: JobRecord, session: Claimant) -> None:
        """Run one of the holder's jobs now. The holder checks `free_slots` first."""
        if session is not self.holder or not self.free_slots:
            raise RuntimeError(f"session {session.session_id} dispatched without holding a free slot")
        self._launch(job, session)

    # -- job mode ----------------------------------------------------------------------------

    def submit(self, job: JobRecord) -> None:
        """Queue a job-mode job; refused at once when the line is full."""
        if len(self._line) >= self._max_waiting:
            raise CapacityError(
                f"backend {self.name!r} has {len(self._line)} entries waiting, its limit; "
                "retry later or raise max_waiting_per_backend"
            )
        self._line.append(job)
        self.queued_jobs += 1
        self._pump()

    async def cancel_job(self, job: JobRecord) -> None:
        """Cancel a job-mode job: drop it from the line, or stop its execution (SPEC J2)."""
        if job.status is JobStatus.QUEUED and job in self._line:
            self._line.remove(job)
            self.queued_jobs -= 1
            job.finish(
                JobStatus.CANCELLED,
                trio.current_time(),
                error=JobCancelledError(f"job {job.job_id} was cancelled", job_id=job.job_id, reason="cancelled"),
            )
            self._log.debug("job.cancelled", job_id=job.job_id)
            self._pump()
        elif job.status is JobStatus.RUNNING and job.cancel_scope is not None:
            job.cancel_scope.cancel()

    async def wait_idle(self) -> None:
        """Return once nothing runs and no job-mode job waits (used to drain on shutdown)."""
        while self._running or any(isinstance(entry, JobRecord) for entry in self._line):
            await self._idle.park()

    def shut_down(self) -> None:
        """Fail the job-mode jobs still waiting (their waiters wake, J4) and start nothing more."""
        self._shut_down = True
        now = trio.current_time()
        for entry in self._line:
            if isinstance(entry, JobRecord):
                entry.finish(
                    JobStatus.CANCELLED,
                    now,
                    error=JobCancelledError(
                        f"job {entry.job_id} did not run: the service shut down",
                        job_id=entry.job_id,
                        reason="service_shutdown",
                    ),
                )
        self._line.clear()
        self._sessions_in_line.clear()
        self.queued_jobs = 0

    # -- the engine --------------------------------------------------------------------------

    def _pump(self) -> None:
        """Start whatever may start now. Called after every change that could free the backend."""
        while self.holder is None and self._line and not self._shut_down:
            head = self._line[0]
            if isinstance(head, JobRecord):
                if not self.free_slots or self._session_jobs_running:
                    return
                self._line.popleft()
                self._launch(head, None)
            else:
                if self._running:
                    return  # drain first: a session's jobs never interleave with others'
                self._line.popleft()
                self._sessions_in_line.discard(head)
                self.holder = head
                head.granted()

    def _launch(self, job: JobRecord, session: Claimant | None) -> None:
        self.queued_jobs -= 1
        job.mark_running(trio.current_time())
        self._running.add(job)
        if session is not None:
            self._session_jobs_running += 1
        if self._parked:  # an executor is free: hand it the job, no task to spawn
            executor = self._parked.pop()
            job.cancel_scope = executor.scope  # cancellable from now, before it has run (J2)
            if executor.waiting:
                executor.waiting = False
                assert executor.task is not None
                trio.lowlevel.reschedule(executor.task, outcome.Value((job, session)))
            else:
                executor.next = (job, session)
        else:
            executor = _Executor()
            job.cancel_scope = executor.scope
            self._nursery.start_soon(self._work, executor, job, session, name=f"qmux executor {self.name}")

    async def _work(self, executor: _Executor, job: JobRecord, session: Claimant | None) -> None:
        """An executor: runs one job at a time, each in the executor's cancel scope.

        Entering and leaving a Trio cancel scope costs more than the rest of a zero-work job, so
        the executor keeps one scope for as long as nobody cancels it, and makes a new one only
        after it was cancelled (a job cancelled, or one past its backend's job_timeout). Only
        the job it runs (or was just handed) holds the scope as its ``cancel_scope``.
        """
        executor.task = trio.lowlevel.current_task()
        current: JobRecord | None = job
        reused = False
        streak = 0
        timeout = self.config.job_timeout
        try:
            while True:
                scope = executor.scope
                with scope:
                    while True:
                        assert current is not None
                        streak = streak + 1 if reused else 0
                        if streak >= _STREAK:  # let others run now and then, as a task per job would
                            streak = 0
                            await trio.lowlevel.checkpoint()
                        if timeout:
                            scope.deadline = trio.current_time() + timeout
                        await self._run_one(current)
                        if scope.cancel_called:
                            break  # cancelled as the job ended: settle it below, with a new scope
                        if timeout:
                            scope.deadline = math.inf
                        done, current = current, None
                        handed = await self._hand_back(executor, done, session)
                        if handed is None:
                            return
                        (current, session), reused = handed
                # the scope was cancelled: the job in hand was cancelled, or ran past job_timeout
                executor.scope = trio.CancelScope()
                assert current is not None
                if not current.status.is_final:
                    self._stopped(current, timed_out=bool(timeout) and trio.current_time() >= scope.deadline)
                done, current = current, None
                handed = await self._hand_back(executor, done, session)
                if handed is None:
                    return
                (current, session), reused = handed
        finally:
            if executor in self._parked:
                self._parked.remove(executor)
            if current is not None:  # cancelled from outside: the service is shutting down (J4)
                if not current.status.is_final:
                    current.finish(
                        JobStatus.ERROR,
                        trio.current_time(),
                        error=JobFailedError(
                            f"the service shut down while job {current.job_id} was running",
                            job_id=current.job_id,
                            reason="service_shutdown",
                        ),
                    )
                    self._log.warning(
                        "job.failed", error="service shutdown", job_id=current.job_id, session_id=current.session_id
                    )
                self._settle(current, session)

    async def _hand_back(
        self, executor: _Executor, done: JobRecord, session: Claimant | None
    ) -> tuple[tuple[JobRecord, Claimant | None], bool] | None:
        """Settle a finished job with the executor already free, then wait for the next one.

        Freeing the executor first means the job its settling starts (a session's next, S7)
        comes straight back to it, often without a trip through Trio's scheduler.
        """
        self._parked.append(executor)
        self._settle(done, session)
        return await self._park(executor)

    async def _park(self, executor: _Executor) -> tuple[tuple[JobRecord, Claimant | None], bool] | None:
        """The next job, and whether it came without waiting; ``None``: none will come.

        The executor is already in `_parked`, so that a job launched while it settled the last
        one comes to it (``executor.next``) rather than to a new task.
        """
        if executor.next is not None:
            handed, executor.next = executor.next, None
            return handed, True
        if self._shut_down:
            return None

        def abort(_: object) -> trio.lowlevel.Abort:
            executor.waiting = False
            if executor in self._parked:
                self._parked.remove(executor)
            return trio.lowlevel.Abort.SUCCEEDED

        executor.waiting = True
        waited: tuple[JobRecord, Claimant | None] = await trio.lowlevel.wait_task_rescheduled(abort)
        return waited, False

    async def _run_one(self, job: JobRecord) -> None:
        """Execute one job and record DONE or ERROR; a cancellation propagates to the executor."""
        self._log.debug("job.started", program_id=job.program_id, job_id=job.job_id, session_id=job.session_id)
        try:
            value = await self.backend.execute(job.request)
        except Exception as exc:  # the backend's failure is this job's, and only its (J3)
            error = JobFailedError(
                f"job {job.job_id} failed on backend {self.name!r}: {type(exc).__name__}: {exc}",
                job_id=job.job_id,
                reason="backend_error",
            )
            error.__cause__ = exc
            if job.finish(JobStatus.ERROR, trio.current_time(), error=error):
                self._log.info(
                    "job.failed",
                    error=str(exc),
                    error_type=type(exc).__name__,
                    job_id=job.job_id,
                    session_id=job.session_id,
                )
        else:
            if job.finish(JobStatus.DONE, trio.current_time(), value=value):
                self._log.debug("job.done", job_id=job.job_id, session_id=job.session_id)

    def _stopped(self, job: JobRecord, *, timed_out: bool) -> None:
        if timed_out:
            error: JobFailedError | JobCancelledError = JobFailedError(
                f"job {job.job_id} ran past backend {self.name!r}'s job_timeout of "
                f"{self.config.job_timeout:g}s and was stopped",
                job_id=job.job_id,
                reason="job_timeout",
            )
            if job.finish(JobStatus.ERROR, trio.current_time(), error=error):
                self._log.warning("job.failed", error="job_timeout", job_id=job.job_id, session_id=job.session_id)
        else:
            error = JobCancelledError(
                f"job {job.job_id} was cancelled while running", job_id=job.job_id, reason="cancelled"
            )
            if job.finish(JobStatus.CANCELLED, trio.current_time(), error=error):
                self._log.info("job.cancelled", while_running=True, job_id=job.job_id, session_id=job.session_id)

    def _settle(self, job: JobRecord, session: Claimant | None) -> None:
        job.cancel_scope = None
        self._running.discard(job)
        if session is not None:
            self._session_jobs_running -= 1
            session.job_finished(job)
        self._pump()
        self._idle.unpark_all()


@final
class _Executor:
    """A long-lived task of a scheduler that runs its jobs one at a time."""

    __slots__ = ("next", "scope", "task", "waiting")

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.task: trio.lowlevel.Task | None = None
        self.waiting = False
        self.next: tuple[JobRecord, Claimant | None] | None = None
