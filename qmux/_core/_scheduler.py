"""Per-backend scheduling: who holds the backend, the waiting line, the running slots.

One `BackendScheduler` per backend decides what runs next under SPEC S7-S9:

* While a session *holds* the backend (it is active), only that session's jobs run; the
  session itself dispatches them, in the order it received them (S7), and keeps the backend
  through its ITTL gaps (S8) until it lets go (S9, close, cancel, max_time).
* Otherwise the backend serves its *waiting line* in arrival order: job-mode jobs, and
  sessions whose next job is waiting (an inactive or not-yet-started session is one entry).
  A session at the head of the line waits until the backend has drained, so that its jobs
  never interleave with anyone else's, then it becomes the holder.
* A *batch* (B2) holds the backend only while it has jobs queued, and never exclusively: its
  jobs may run beside job-mode jobs and other batches'. While it is active its claims go in a
  *priority lane*, served before the line.

The scheduler is the *policy*: plain synchronous state inside the service's Trio thread that
never awaits, so its decisions are atomic. It owns its figures (queued jobs, the running
set); sessions report what they queue and drop through its methods. The jobs it starts run in
its `ExecutorPool` (``_executors.py``), which tells it when each ends.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, final

import structlog
import trio

from ._errors import CapacityError, JobCancelledError
from ._executors import Claimant, ExecutorPool
from ._jobs import JobRecord, JobStatus

if TYPE_CHECKING:
    from ._backend import Backend, BackendConfig

__all__ = ["BackendScheduler", "Claimant"]

_log = structlog.get_logger("qmux")


def _drops_debug(log: object) -> bool:
    """Whether `log` is one of structlog's filtering loggers (``make_filtering_bound_logger``) set
    above debug. Their level is fixed with their class, so a debug event it would drop need not be
    built (three a job: a dict of fields and a call each). Any other logger (a stdlib one, whose
    level can change) is given every event, as before."""
    effective_level = getattr(log, "get_effective_level", None)
    if effective_level is None:
        return False
    try:
        level = effective_level()
        return bool(level > logging.DEBUG and type(log) is structlog.make_filtering_bound_logger(level))
    except Exception:  # not a level structlog knows: it decides for itself
        return False


@final
class BackendScheduler:
    """Owns one backend's waiting line and running slots."""

    def __init__(self, backend: Backend, *, nursery: trio.Nursery, max_waiting: int) -> None:
        self.backend = backend
        self.config: BackendConfig = backend.config
        self.holder: Claimant | None = None
        #: jobs queued for this backend, in sessions and in the line (the `pending_jobs` figure)
        self._queued = 0
        self._max_waiting = max_waiting
        #: the waiting line, in arrival order: job-mode jobs, and sessions with a job waiting
        self._line: deque[JobRecord | Claimant] = deque()
        #: active batches with queued jobs: they go before the line (B2, S7)
        self._priority: deque[Claimant] | None = None  # made by the first batch that needs it
        #: every session in either lane
        self._claimed: set[Claimant] = set()
        self._running: set[JobRecord] = set()
        #: running jobs of dedicated sessions: nobody else's job runs beside them (S7)
        self._exclusive_running = 0
        #: set when a job ends, for `wait_idle` (made only while someone waits: shutdown)
        self._idle: trio.Event | None = None
        self._shut_down = False
        #: a node handing this backend over: nothing starts, what runs ends (`pause`)
        self._paused = False
        #: bound to the backend's name, once: its executors and its sessions log through it (a session
        #: adds its id to each event), so that no session carries a logger of its own
        self.log: structlog.typing.FilteringBoundLogger = _log.bind(backend=backend.name)
        #: whether its debug events can be emitted: the per-job ones are built only then
        self.logs_debug = not _drops_debug(self.log)
        #: Trio's clock, read directly: ``trio.current_time()`` is three calls deep, and a job reads it thrice
        self.now: Callable[[], float] = trio.lowlevel.current_clock().current_time
        self._pool = ExecutorPool(backend, nursery, owner=self)

    @property
    def name(self) -> str:
        return self.backend.name

    def pending_jobs(self) -> int:
        return self._queued

    @property
    def running_count(self) -> int:
        return len(self._running)

    @property
    def free_slots(self) -> int:
        return 0 if self._paused else self.config.concurrency - len(self._running)

    def waiting_line(self) -> list[JobRecord | Claimant]:
        """A copy of the line, head first (for tests and introspection)."""
        return list(self._line)

    # -- called by sessions ----------------------------------------------------------------

    def claim(self, session: Claimant, *, priority: bool = False) -> None:
        """Put a session with a waiting job in line (or at once in front, if the backend is idle).

        `priority`: an active batch, whose jobs go before the line (B2).
        """
        if session is self.holder or session in self._claimed:
            return
        if priority:
            if self._priority is None:
                self._priority = deque()
            self._priority.append(session)
        else:
            self._line.append(session)
        self._claimed.add(session)
        self._pump()

    def withdraw(self, session: Claimant) -> None:
        """The session has nothing to run now: take it out of its lane, or let go of the backend."""
        if session is self.holder:
            self.holder = None
        elif session in self._claimed:
            self._claimed.discard(session)
            if self._priority is not None and session in self._priority:
                self._priority.remove(session)
            else:
                self._line.remove(session)
        self._pump()

    def jobs_ahead(self, job: JobRecord, session: Claimant | None) -> int | None:
        """How many queued jobs will start before `job` (SPEC Q1); ``None`` if it is not queued here.

        The holder's queue goes first, then the priority lane's batches, then the line in order;
        within its own session, the jobs it received before it.
        """
        holder = self.holder
        if session is not None and session is holder:
            return session.queue_index(job)
        ahead = holder.queued if holder is not None else 0
        for lane in (self._priority or (), self._line):
            for entry in lane:
                if entry is job:
                    return ahead
                if isinstance(entry, JobRecord):
                    ahead += 1
                elif session is not None and entry is session:
                    return ahead + session.queue_index(job)
                else:
                    ahead += entry.queued
        return ahead if session is not None else None  # a session not in line yet: after everyone

    def queue_info(self) -> dict[str, int]:
        """Jobs of active sessions and batches (``priority``) and jobs in the line (``normal``), SPEC Q1."""
        holding = self.holder.queued if self.holder is not None else 0
        priority = holding + sum(entry.queued for entry in self._priority or ())
        return {"priority": priority, "normal": self._queued - priority}

    def session_queued(self, count: int) -> None:
        """A session queued `count` jobs for this backend (they count in `pending_jobs`)."""
        self._queued += count

    def session_dropped(self, count: int) -> None:
        """A session dropped `count` of its queued jobs without running them (cancelled, failed)."""
        self._queued -= count

    def start(self, job: JobRecord, session: Claimant, now: float) -> None:
        """Run one of the holder's jobs now (Trio time `now`). The holder checks `free_slots` first."""
        if session is not self.holder or len(self._running) >= self.config.concurrency:
            raise RuntimeError(f"session {session.session_id} dispatched without holding a free slot")
        self._launch(job, session, now)

    # -- job mode ----------------------------------------------------------------------------

    def check_room(self) -> None:
        """Refuse a new job-mode job at once when the line is full (before it is made and registered)."""
        if len(self._line) >= self._max_waiting:
            raise CapacityError(
                f"backend {self.name!r} has {len(self._line)} entries waiting, its limit; "
                "retry later or raise max_waiting_per_backend"
            )

    def submit(self, job: JobRecord) -> None:
        """Queue a job-mode job (a new one passed `check_room`; a recovered one was accepted before)."""
        self._line.append(job)
        self._queued += 1
        self._pump()

    async def cancel_job(self, job: JobRecord) -> None:
        """Cancel a job-mode job: drop it from the line, or stop its execution (SPEC J2)."""
        if job.status is JobStatus.QUEUED and job in self._line:
            self._line.remove(job)
            self._queued -= 1
            job.finish(
                JobStatus.CANCELLED,
                trio.current_time(),
                error=JobCancelledError(f"job {job.job_id} was cancelled", job_id=job.job_id, reason="cancelled"),
            )
            self.log.debug("job.cancelled", job_id=job.job_id)
            self._pump()
        elif job.status is JobStatus.RUNNING and job.cancel_scope is not None:
            job.cancel_scope.cancel()

    async def wait_idle(self) -> None:
        """Return once nothing runs and no job-mode job waits (used to drain on shutdown)."""
        while self._running or any(isinstance(entry, JobRecord) for entry in self._line):
            if self._idle is None:
                self._idle = trio.Event()
            await self._idle.wait()

    def pause(self) -> None:
        """Start no job from now on (sessions' nor job mode's); the queued ones stay queued."""
        self._paused = True

    def shut_down(self) -> None:
        """Fail the job-mode jobs still waiting (their waiters wake, J4) and start nothing more."""
        self._shut_down = True
        self._pool.close()
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
        self._priority = None
        self._claimed.clear()
        self._queued = 0

    # -- the engine --------------------------------------------------------------------------

    def _pump(self) -> None:
        """Start whatever may start now. Called after every change that could free the backend."""
        while self.holder is None and not self._shut_down and not self._paused:
            lane = self._priority or self._line
            if not lane:
                return
            head = lane[0]
            if isinstance(head, JobRecord) or not head.exclusive:  # job mode, or a batch (B2)
                if not self.free_slots or self._exclusive_running:
                    return  # nothing runs beside a dedicated session's jobs (S7)
            elif self._running:
                return  # drain first: a dedicated session's jobs never interleave with others'
            lane.popleft()
            if isinstance(head, JobRecord):
                self._launch(head, None, self.now())
            else:
                self._claimed.discard(head)
                self.holder = head
                head.granted()

    def _launch(self, job: JobRecord, session: Claimant | None, now: float) -> None:
        self._queued -= 1
        job.mark_running(now)
        self._running.add(job)
        if session is not None and session.exclusive:
            self._exclusive_running += 1
        self._pool.run(job, session)

    def settle(self, job: JobRecord, session: Claimant | None) -> None:
        """A job has ended (its pool tells us): free its slot, tell its session, start what may start."""
        job.cancel_scope = None
        self._running.discard(job)
        if session is not None:
            if session.exclusive:
                self._exclusive_running -= 1
            session.job_finished(job)
        if self.holder is None:  # a holder's next job was started by the holder, if it had one
            self._pump()
        if self._idle is not None:
            self._idle.set()
            self._idle = None
