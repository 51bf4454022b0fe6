"""Durability: every session and job recorded as it changes, in batches, off the event loop.

Recording is synchronous and cheap (the changed object goes into a buffer, the latest per id
wins, and the writer is woken if it sleeps: a dict store and an attribute test per change); one
writer task takes a snapshot of each changed object per batch (`SessionSource`, `JobSource`) and
hands the batch to a `JournalStore`, in a worker thread when the store blocks. The core knows
stores only through that protocol: SQLite, memory and others live in ``qmux.journal``. Whoever
must not answer before a row is durable (a job's submitter, SPEC J4's "accepted") waits on the
`Ticket` of the batch that holds it: group commit, so many concurrent submitters share one sync.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Protocol, final

import structlog
import trio

from ._errors import StorageError
from ._snapshots import JobSnapshot, SessionSnapshot
from ._waiters import enlist, wake

if TYPE_CHECKING:
    from ._time import WallClock

__all__ = ["JobSource", "Journal", "JournalStore", "SessionSource", "Ticket"]


class SessionSource(Protocol):
    """A session as the journal sees it: an id, and a snapshot of itself taken on demand."""

    @property
    def session_id(self) -> str: ...

    def snapshot(self, epoch: float) -> SessionSnapshot:
        """Its state now, with Trio times turned into POSIX seconds (Trio time + `epoch`)."""
        ...


class JobSource(Protocol):
    """A job as the journal sees it: an id, and a snapshot of itself taken on demand."""

    @property
    def job_id(self) -> str: ...

    def snapshot(self, epoch: float) -> JobSnapshot:
        """Its state now, with Trio times turned into POSIX seconds (Trio time + `epoch`)."""
        ...


class JournalStore(Protocol):
    """Where snapshots are kept: a SQLite file, PostgreSQL, memory (see ``qmux.journal``)."""

    #: True when `write` does I/O that must not run on the event loop
    @property
    def blocking(self) -> bool: ...

    def write(self, sessions: Sequence[SessionSnapshot], jobs: Sequence[JobSnapshot]) -> None:
        """Store the snapshots, replacing earlier ones of the same ids, all or nothing."""
        ...

    def load(self, *, retain_finished: int) -> tuple[list[SessionSnapshot], list[JobSnapshot]]:
        """What a restart recovers: every session not closed and every job not finished, and, per
        owner (a snapshot's `owner`; ``None`` counts as one owner), the `retain_finished` newest
        closed sessions and the `retain_finished` newest finished jobs.

        Both lists are in first-write order: a row's first write fixes its place and later
        writes of the same id keep it, so queued jobs come back in arrival order ("newest" is
        by that place too).
        """
        ...

    def close(self) -> None: ...


_log = structlog.get_logger("qmux")
#: after a refused batch, the writer waits this long before the next, doubling up to the last
_FIRST_RETRY: Final = 0.5
_LAST_RETRY: Final = 30.0


@final
class Ticket:
    """The fate of one batch: wait on it to know your rows are durable, or why they are not."""

    __slots__ = ("_waiters", "error", "settled")

    def __init__(self) -> None:
        self._waiters: list[trio.lowlevel.Task] | None = None
        self.settled = False
        self.error: StorageError | None = None

    def settle(self, error: StorageError | None) -> None:
        self.error, self.settled = error, True
        waiters, self._waiters = self._waiters, None
        wake(waiters)

    async def wait(self) -> None:
        if self.settled:
            await trio.lowlevel.checkpoint()
        else:
            if self._waiters is None:
                self._waiters = []
            await trio.lowlevel.wait_task_rescheduled(enlist(self._waiters))
        if self.error is not None:
            raise self.error


@final
class Journal:
    """Buffers what changed and writes its snapshots to a `JournalStore` in batches (group commit)."""

    def __init__(self, store: JournalStore, clock: WallClock) -> None:
        self.store = store
        self._clock = clock
        #: what changed since the last batch: rows are made once per batch, from the latest state
        self._sessions: dict[str, SessionSource] = {}
        self._jobs: dict[str, JobSource] = {}
        self._ticket = Ticket()
        #: the writer task, and whether it sleeps until the next change (which then wakes it)
        self._writer: trio.lowlevel.Task | None = None
        self._asleep = False
        self._limiter = trio.CapacityLimiter(1)
        self._idle = trio.Event()
        self._idle.set()
        #: set by `seal`: nothing more is written, and whoever waits to be durable is told so
        self._sealed: Ticket | None = None
        #: the batch being written, which `seal` abandons (a store that hangs must not hold a stop)
        self._in_flight = trio.CancelScope()
        #: Trio time plus this is POSIX seconds: an addition, several times per row (no call)
        self._epoch = clock.wall_epoch.timestamp() - clock.trio_epoch

    # -- recording (synchronous, cheap: the snapshot is taken when the batch is written) ---------

    def session_changed(self, session: SessionSource) -> Ticket:
        if self._sealed is not None:
            return self._sealed
        self._sessions[session.session_id] = session
        if self._asleep:
            self._wake()
        return self._ticket

    def job_changed(self, job: JobSource) -> Ticket:
        if self._sealed is not None:
            return self._sealed
        self._jobs[job.job_id] = job
        if self._asleep:
            self._wake()
        return self._ticket

    def _wake(self) -> None:
        assert self._writer is not None
        self._asleep = False
        trio.lowlevel.reschedule(self._writer)

    async def _sleep(self) -> None:
        """Wait for the next change (recorded since the writer last looked)."""
        self._asleep = True
        await trio.lowlevel.wait_task_rescheduled(self._woken_early)

    def _woken_early(self, _: object) -> trio.lowlevel.Abort:
        """The writer's sleep was cancelled (its backoff ran out, or the service stops): no change may wake it now."""
        self._asleep = False
        return trio.lowlevel.Abort.SUCCEEDED

    # -- writing ---------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer task: one batch at a time, whatever accumulated while the last was written."""
        self._writer = trio.lowlevel.current_task()
        task_status.started()
        backoff = _FIRST_RETRY
        while True:
            if not (self._sessions or self._jobs):
                await self._sleep()
            if await self._write_batch():
                backoff = _FIRST_RETRY
            else:  # the store refuses writes: try again later, or as soon as anyone new waits on it
                with trio.move_on_after(backoff):
                    await self._sleep()
                backoff = min(backoff * 2, _LAST_RETRY)

    async def _write_batch(self) -> bool:
        """Write what changed since the last batch; ``False`` if the store refused it.

        What a refused batch held is not dropped: it goes back into the buffer, so that the
        latest state of every session and job it held is written once the store takes writes
        again (a job that finished during an outage is not left RUNNING in the journal). Its
        ticket fails, so that no one is told something is durable that is not.
        """
        if self._sealed is not None:  # what a refused batch put back is dropped
            self._sessions, self._jobs = {}, {}
            return True
        self._idle = trio.Event()
        epoch = self._epoch
        session_sources, job_sources = self._sessions, self._jobs
        sessions = [session.snapshot(epoch) for session in session_sources.values()]
        jobs = [job.snapshot(epoch) for job in job_sources.values()]
        ticket = self._ticket
        self._sessions, self._jobs, self._ticket = {}, {}, Ticket()
        error: StorageError | None = None
        try:
            # a batch, once begun, is settled (its waiters must wake), unless the journal is sealed
            # meanwhile: then it is abandoned to its thread, its waiters told it is not durable
            with trio.CancelScope(shield=True) as self._in_flight:
                if self.store.blocking:
                    await trio.to_thread.run_sync(
                        self.store.write, sessions, jobs, limiter=self._limiter, abandon_on_cancel=True
                    )
                else:
                    self.store.write(sessions, jobs)
            if self._in_flight.cancelled_caught and self._sealed is not None:
                error = self._sealed.error
        except StorageError as exc:
            error = exc
            _log.error("journal.write_failed", error=str(exc), sessions=len(sessions), jobs=len(jobs))
        except Exception as exc:  # a store's own failure is a storage failure, not a crash
            error = StorageError(f"the journal store failed: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            _log.error("journal.write_failed", error=str(error), sessions=len(sessions), jobs=len(jobs))
        ticket.settle(error)
        if error is not None:
            for key, session in session_sources.items():
                self._sessions.setdefault(key, session)
            for key, job in job_sources.items():
                self._jobs.setdefault(key, job)
        self._idle.set()
        return error is None

    async def flush(self) -> None:
        """Write whatever is buffered now (used on shutdown, after the last state changes)."""
        while self._sealed is None:
            idle = self._idle
            if not idle.is_set():  # a batch is being written (maybe by the writer task, just now)
                await idle.wait()
            elif not (self._sessions or self._jobs) or not await self._write_batch():
                return  # all written, or the store refuses: what it holds stays buffered

    def seal(self) -> None:
        """Write nothing from now on: a process that handed its work over to another (a node of a
        cluster) must not overwrite what the new owner recovers. What is buffered is dropped, the
        batch being written is abandoned, and whoever waits to know their rows are durable learns
        that they are not."""
        if self._sealed is not None:
            return
        sealed = Ticket()
        sealed.settle(StorageError("the journal is sealed: this service handed its work over to another process"))
        self._sealed = sealed
        self._in_flight.shield = False
        self._in_flight.cancel()
        self._sessions, self._jobs = {}, {}
        self._ticket.settle(sealed.error)
