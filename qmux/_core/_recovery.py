"""Recovery: a journal's snapshots turned back into live state after a restart (SPEC J4).

The journal's times are wall-clock (POSIX seconds), so a restarted process counts the time it
spent down as elapsed: a session whose max_time ran out meanwhile closes at once. These are
plain conversions; the service decides which actors to start from them (``_service.py``).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

from ._backend import JobRequest
from ._checks import SessionTerms
from ._errors import ClosedReason, JobCancelledError, JobError, JobFailedError
from ._jobs import JobRecord, JobStatus
from ._session_state import Intake, SessionMachine, SessionState
from ._snapshots import JobSnapshot, SessionSnapshot

__all__ = ["job_from_snapshot", "machine_from_snapshot", "terms_from_snapshot"]


def terms_from_snapshot(snapshot: SessionSnapshot) -> SessionTerms:
    """What the session was opened with, as the journal kept it."""
    return SessionTerms(snapshot.max_time, snapshot.mode, snapshot.failure_policy, snapshot.max_jobs)


def machine_from_snapshot(
    snapshot: SessionSnapshot,
    *,
    to_trio: Callable[[float], float],
    interactive_ttl: float,
    idle_open_timeout: float,
) -> SessionMachine:
    """A session's state machine as the journal left it, its clocks running from their wall-clock starts."""

    def at(posix: float | None) -> float | None:
        return None if posix is None else to_trio(posix)

    opened_at = to_trio(snapshot.opened_at)
    machine = SessionMachine(
        now=opened_at,
        max_time=snapshot.max_time,
        interactive_ttl=interactive_ttl,
        idle_open_timeout=idle_open_timeout,
        batch=snapshot.mode == "batch",
    )
    machine.state = SessionState(snapshot.state)
    if machine.state is SessionState.CLOSED:
        machine.intake = Intake.CLOSED
    elif not snapshot.accepting_jobs:
        machine.intake = Intake.DRAINING
    machine.closed_reason = ClosedReason(snapshot.closed_reason) if snapshot.closed_reason else None
    machine.started_at, machine.activated_at = at(snapshot.started_at), at(snapshot.activated_at)
    machine.deactivated_at, machine.closed_at = at(snapshot.deactivated_at), at(snapshot.closed_at)
    machine.last_job_started = at(snapshot.last_job_started)
    machine.last_job_completed = at(snapshot.last_job_completed)
    machine.timestamps = [(status, to_trio(posix)) for status, posix in snapshot.timestamps]
    if machine.started_at is not None:
        machine.deadlines.max_time = machine.started_at + machine.max_time
    if snapshot.root_job_id is not None or machine.state is SessionState.CLOSED:
        machine.deadlines.idle_at_open = math.inf
    return machine


def job_from_snapshot(
    snapshot: JobSnapshot,
    *,
    to_trio: Callable[[float], float],
    now: float,
    canceller: Callable[[JobRecord], Awaitable[None]],
    idempotent: bool,
) -> JobRecord:
    """A job record as the journal left it.

    A finished job keeps its outcome. A job that was running when the process stopped is failed
    as ``interrupted_by_restart``, unless its backend says its jobs are safe to run again
    (`idempotent`): then it is queued again, under the same id.
    """
    job = JobRecord(
        JobRequest(snapshot.job_id, snapshot.session_id, snapshot.program_id, snapshot.inputs, dict(snapshot.options)),
        snapshot.backend,
        to_trio(snapshot.created_at),
        canceller,
        owner=snapshot.owner,
    )
    status = JobStatus(snapshot.status)
    job.attempts, job.tags = snapshot.attempts, tuple(snapshot.tags)
    if status.is_final:
        error: JobError | None = None
        if snapshot.error is not None:
            kind = JobCancelledError if snapshot.error.kind == "cancelled" else JobFailedError
            error = kind(snapshot.error.message, job_id=snapshot.job_id, reason=snapshot.error.reason)
        job.finish(status, to_trio(snapshot.finished_at or snapshot.created_at), value=snapshot.value, error=error)
        if snapshot.started_at is not None:
            job.started_at = to_trio(snapshot.started_at)
    elif status is JobStatus.RUNNING and not idempotent:
        job.finish(
            JobStatus.ERROR,
            now,
            error=JobFailedError(
                f"job {snapshot.job_id} was interrupted by a restart of the service while it ran; "
                "its backend does not say it is safe to run again",
                job_id=snapshot.job_id,
                reason="interrupted_by_restart",
            ),
        )
    return job
