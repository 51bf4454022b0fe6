"""The executor pool of one backend: long-lived tasks that run its jobs, one at a time each.

The scheduler (``_scheduler.py``) decides *what* runs; the pool runs it. An executor that ends a
job hands it back (`PoolOwner.settle`) with itself already free, so that the job its settling starts (a
session's next, S7) comes straight back to it, often without a trip through Trio's scheduler.
A job is stopped by cancelling the executor's scope (J2, `job_timeout`); whatever the backend
raises fails that job only (J3); a job still held when the service cancels the pool fails as
``service_shutdown`` (J4).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, final

import outcome
import structlog
import trio

from ._errors import JobCancelledError, JobFailedError, TransientBackendError
from ._jobs import JobRecord, JobStatus

if TYPE_CHECKING:
    from ._backend import Backend

__all__ = ["Claimant", "ExecutorPool", "PoolOwner"]

#: jobs an executor may run back to back, when each is handed over as the last ends, before it yields
_STREAK = 16


class Claimant(Protocol):
    """A session as the scheduler sees it."""

    session_id: str

    def granted(self) -> None:
        """The backend is now this session's; it should dispatch its queued jobs."""

    def job_finished(self, job: JobRecord) -> None:
        """One of its jobs has ended (any terminal state)."""

    @property
    def exclusive(self) -> bool:
        """Whether its jobs must not run beside anyone else's (a dedicated session, S7; a batch is not)."""
        ...

    @property
    def queued(self) -> int:
        """How many of its jobs wait to start."""
        ...

    def queue_index(self, job: JobRecord) -> int:
        """How many of its own queued jobs start before `job`."""
        ...

    @property
    def max_time_deadline(self) -> float:
        """When its max_time runs out, in Trio time: no retry starts past it (R1)."""
        ...


class PoolOwner(Protocol):
    """What a pool reports to and borrows from: its backend's scheduler (nothing bound per pool)."""

    #: the backend's logger, bound to its name, and whether its debug events can be emitted
    log: structlog.typing.FilteringBoundLogger
    logs_debug: bool

    #: Trio's clock, read directly
    now: Callable[[], float]

    def settle(self, job: JobRecord, session: Claimant | None) -> None:
        """A job has ended (any terminal state); the executor that ran it is free again."""


@final
class ExecutorPool:
    """Runs one backend's jobs on executor tasks in the service's nursery."""

    def __init__(self, backend: Backend, nursery: trio.Nursery, *, owner: PoolOwner) -> None:
        self._backend = backend
        self._nursery = nursery
        self._owner = owner
        self._log = owner.log
        self._logs_debug = owner.logs_debug
        #: executors with no job, ready for the next one
        self._parked: list[_Executor] = []
        self._closed = False

    def close(self) -> None:
        """Start nothing more: executors that finish their job end."""
        self._closed = True

    def run(self, job: JobRecord, session: Claimant | None) -> None:
        """Run `job` now: on a parked executor if one is free, else on a new one."""
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
            executor = _Executor(self)
            job.cancel_scope = executor.scope
            self._nursery.start_soon(self._work, executor, job, session, name=f"qmux executor {self._backend.name}")

    async def _work(self, executor: _Executor, job: JobRecord, session: Claimant | None) -> None:
        """An executor: runs one job at a time, each in the executor's cancel scope.

        Entering and leaving a Trio cancel scope costs more than the rest of a zero-work job, so
        the executor keeps one scope for as long as nobody cancels it, and makes a new one only
        after it was cancelled (a job cancelled, or one past its backend's job_timeout). Only
        the job it runs (or was just handed) holds the scope as its ``cancel_scope``.
        """
        executor.task = trio.lowlevel.current_task()
        current: JobRecord | None = job
        del job  # `current` is the job in hand: the first one must not stay alive as an argument
        reused = False
        streak = 0
        timeout = self._backend.config.job_timeout
        try:
            while True:
                scope = executor.scope
                with scope:
                    while True:
                        if current is None:  # the next job: handed over as the last ended, or waited for
                            if executor.next is not None:
                                (current, session), executor.next = executor.next, None
                                reused = True
                            elif self._closed:
                                return
                            else:  # parked (in `_parked` since `_release`), in its scope: `run` hands it one
                                executor.waiting = True
                                current, session = await trio.lowlevel.wait_task_rescheduled(executor.abort)
                                reused = False
                        streak = streak + 1 if reused else 0
                        if streak >= _STREAK:  # let others run now and then, as a task per job would
                            streak = 0
                            await trio.lowlevel.checkpoint()
                        if timeout:
                            scope.deadline = trio.current_time() + timeout
                        await self._run_one(current, session)
                        if scope.cancel_called:
                            break  # cancelled as the job ended: settle it below, with a new scope
                        if timeout:
                            scope.deadline = math.inf
                        self._release(executor, current, session)
                        current = session = None  # a parked executor keeps no job, result or session alive
                # the scope was cancelled: the job in hand was cancelled, or ran past job_timeout
                executor.scope = trio.CancelScope()
                assert current is not None
                if not current.status.is_final:
                    self._stopped(current, timed_out=bool(timeout) and trio.current_time() >= scope.deadline)
                self._release(executor, current, session)
                current = session = None
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
                self._owner.settle(current, session)

    def _release(self, executor: _Executor, done: JobRecord, session: Claimant | None) -> None:
        """Settle a finished job with the executor already free (parked).

        Freeing the executor first means the job its settling starts (a session's next, S7)
        comes straight back to it (``executor.next``), often without a trip through Trio's
        scheduler, rather than to a new task.
        """
        self._parked.append(executor)
        self._owner.settle(done, session)

    async def _run_one(self, job: JobRecord, session: Claimant | None) -> None:
        """Execute one job and record DONE or ERROR; a cancellation propagates to the executor.

        A `TransientBackendError` runs the job again, in place (same id, same executor, so it
        keeps its place at the head of its session's queue), up to the backend's ``retries`` more
        times, waiting ``retry_backoff`` seconds, then twice as long each time, and never past its
        session's max_time (R1). Any other exception fails it at once (J3).
        """
        config = self._backend.config
        request = job.request
        while True:
            job.attempts += 1
            if self._logs_debug:
                self._log.debug(
                    "job.started",
                    program_id=request.program_id,
                    job_id=request.job_id,
                    session_id=request.session_id,
                    attempt=job.attempts,
                )
            try:
                value = await self._backend.execute(request)
            except TransientBackendError as exc:
                delay = config.retry_backoff * 2 ** (job.attempts - 1)
                deadline = session.max_time_deadline if session is not None else math.inf
                if job.attempts <= config.retries and trio.current_time() + delay < deadline:
                    self._log.info(
                        "job.retrying",
                        job_id=job.job_id,
                        session_id=job.session_id,
                        attempt=job.attempts,
                        error=str(exc),
                        delay=delay,
                    )
                    await trio.sleep(delay)
                    continue
                self._failed(job, exc, retried=job.attempts > 1, stopped_by_max_time=job.attempts <= config.retries)
            except Exception as exc:  # the backend's failure is this job's, and only its (J3)
                self._failed(job, exc)
            else:
                if job.finish(JobStatus.DONE, self._owner.now(), value=value) and self._logs_debug:
                    self._log.debug("job.done", job_id=request.job_id, session_id=request.session_id)
            return

    def _failed(
        self, job: JobRecord, exc: Exception, *, retried: bool = False, stopped_by_max_time: bool = False
    ) -> None:
        attempts = f" after {job.attempts} attempts" if retried or stopped_by_max_time else ""
        why = " (no retry: it would outlive its session's max_time)" if stopped_by_max_time else ""
        error = JobFailedError(
            f"job {job.job_id} failed on backend {self._backend.name!r}{attempts}{why}: {type(exc).__name__}: {exc}",
            job_id=job.job_id,
            reason="backend_error",
        )
        # The backend's own frames explain the failure; this executor's frame (the traceback's
        # first) holds the job, which holds the error: kept, it would make a reference cycle that
        # only the cyclic collector could free (once per failed job).
        traceback = exc.__traceback__
        if traceback is not None and traceback.tb_frame.f_code is ExecutorPool._run_one.__code__:
            exc.__traceback__ = traceback.tb_next
        error.__cause__ = exc
        if job.finish(JobStatus.ERROR, trio.current_time(), error=error):
            self._log.info(
                "job.failed",
                error=str(exc),
                error_type=type(exc).__name__,
                job_id=job.job_id,
                session_id=job.session_id,
                attempts=job.attempts,
            )

    def _stopped(self, job: JobRecord, *, timed_out: bool) -> None:
        if timed_out:
            error: JobFailedError | JobCancelledError = JobFailedError(
                f"job {job.job_id} ran past backend {self._backend.name!r}'s job_timeout of "
                f"{self._backend.config.job_timeout:g}s and was stopped",
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


@final
class _Executor:
    """A long-lived task of a scheduler that runs its jobs one at a time."""

    __slots__ = ("next", "pool", "scope", "task", "waiting")

    def __init__(self, pool: ExecutorPool) -> None:
        self.pool = pool
        self.scope = trio.CancelScope()
        self.task: trio.lowlevel.Task | None = None
        self.waiting = False
        self.next: tuple[JobRecord, Claimant | None] | None = None

    def abort(self, _: object) -> trio.lowlevel.Abort:
        """Its wait for a job was cancelled (the service is stopping): it is no longer free."""
        self.waiting = False
        if self in self.pool._parked:
            self.pool._parked.remove(self)
        return trio.lowlevel.Abort.SUCCEEDED
