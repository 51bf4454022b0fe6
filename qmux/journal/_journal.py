"""The journal: records every session and job as it changes, in batches, off the event loop.

Recording is synchronous and cheap (a snapshot into a buffer, the latest per id wins); one
writer task hands each batch to the store, in a worker thread when the store blocks. Whoever
must not answer before a row is durable (a job's submitter, SPEC J4's "accepted") waits on the
`Ticket` of the batch that holds it: group commit, so many concurrent submitters share one sync.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import structlog
import trio

from .._errors import JobCancelledError, StorageError
from ._rows import ErrorRow, JobRow, SessionRow

if TYPE_CHECKING:
    from .._clock import WallClock
    from .._jobs import JobRecord
    from .._session import SessionActor
    from ._store import JournalStore

__all__ = ["Journal", "Ticket"]

_log = structlog.get_logger("qmux")


@final
class Ticket:
    """The fate of one batch: wait on it to know your rows are durable, or why they are not."""

    __slots__ = ("_written", "error")

    def __init__(self) -> None:
        self._written = trio.Event()
        self.error: StorageError | None = None

    def settle(self, error: StorageError | None) -> None:
        self.error = error
        self._written.set()

    async def wait(self) -> None:
        await self._written.wait()
        if self.error is not None:
            raise self.error


@final
class Journal:
    """Buffers snapshots and writes them to a `JournalStore` in batches."""

    def __init__(self, store: JournalStore, clock: WallClock) -> None:
        self.store = store
        self._clock = clock
        #: what changed since the last batch: rows are made once per batch, from the latest state
        self._sessions: dict[str, SessionActor] = {}
        self._jobs: dict[str, JobRecord] = {}
        self._ticket = Ticket()
        self._pending = trio.Event()
        self._limiter = trio.CapacityLimiter(1)
        self._idle = trio.Event()
        self._idle.set()
        #: Trio time plus this is POSIX seconds: float arithmetic, several times per row
        self._epoch = clock.wall_epoch.timestamp() - clock.trio_epoch

    def _posix(self, trio_time: float) -> float:
        return trio_time + self._epoch

    def wall(self, trio_time: float | None) -> float | None:
        return None if trio_time is None else trio_time + self._epoch

    # -- recording (synchronous, cheap: the row is made when the batch is written) ---------------

    def session_changed(self, actor: SessionActor) -> Ticket:
        self._sessions[actor.session_id] = actor
        return self._buffered()

    def job_changed(self, job: JobRecord) -> Ticket:
        self._jobs[job.job_id] = job
        return self._buffered()

    def _session_row(self, actor: SessionActor) -> SessionRow:
        wall, posix = self.wall, self._posix
        return SessionRow(
            session_id=actor.session_id,
            backend=actor.backend_name,
            max_time=actor.max_time,
            mode=actor.mode,
            state=actor.state.value,
            accepting_jobs=actor.accepting_jobs,
            closed_reason=actor.closed_reason.value if actor.closed_reason else None,
            root_job_id=actor.root_job_id,
            opened_at=posix(actor.opened_at),
            started_at=wall(actor.started_at),
            activated_at=wall(actor.activated_at),
            deactivated_at=wall(actor.deactivated_at),
            closed_at=wall(actor.closed_at),
            last_job_started=wall(actor.last_job_started),
            last_job_completed=wall(actor.last_job_completed),
            timestamps=tuple((status, posix(at)) for status, at in actor.timestamps),
            owner=actor.owner,
        )

    def _job_row(self, job: JobRecord) -> JobRow:
        error = None
        if job.error is not None:
            kind = "cancelled" if isinstance(job.error, JobCancelledError) else "failed"
            error = ErrorRow(kind, str(job.error), job.error.reason)
        request = job.request
        return JobRow(
            job_id=job.job_id,
            session_id=request.session_id,
            backend=job.backend_name,
            program_id=request.program_id,
            inputs=request.inputs,
            options=dict(request.options),
            status=job.status.value,
            created_at=self._posix(job.created_at),
            started_at=self.wall(job.started_at),
            finished_at=self.wall(job.finished_at),
            value=job.value,
            error=error,
            owner=job.owner,
        )

    def _buffered(self) -> Ticket:
        self._pending.set()
        return self._ticket

    # -- writing ---------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer task: one batch at a time, whatever accumulated while the last was written."""
        task_status.started()
        while True:
            await self._pending.wait()
            await self._write_batch()

    async def _write_batch(self) -> None:
        self._pending = trio.Event()
        self._idle = trio.Event()
        sessions = [self._session_row(actor) for actor in self._sessions.values()]
        jobs = [self._job_row(job) for job in self._jobs.values()]
        ticket = self._ticket
        self._sessions, self._jobs, self._ticket = {}, {}, Ticket()
        error: StorageError | None = None
        try:
            with trio.CancelScope(shield=True):  # a batch, once begun, is settled: its waiters must wake
                if self.store.blocking:
                    await trio.to_thread.run_sync(self.store.write, sessions, jobs, limiter=self._limiter)
                else:
                    self.store.write(sessions, jobs)
        except StorageError as exc:
            error = exc
            _log.error("journal.write_failed", error=str(exc), sessions=len(sessions), jobs=len(jobs))
        except Exception as exc:  # a store's own failure is a storage failure, not a crash
            error = StorageError(f"the journal store failed: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            _log.error("journal.write_failed", error=str(error), sessions=len(sessions), jobs=len(jobs))
        ticket.settle(error)
        self._idle.set()

    async def flush(self) -> None:
        """Write whatever is buffered now (used on shutdown, after the last state changes)."""
        await self._idle.wait()
        if self._sessions or self._jobs:
            await self._write_batch()
