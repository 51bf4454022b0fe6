"""Snapshots: what the core tells its journal of each session and job, and reads back on recovery.

They are plain frozen values of the core's own making; a store (``qmux.journal``) turns them
into rows and back, and never sees an actor.

Times are UTC wall-clock seconds (POSIX timestamps), so that a restarted process can count the
time it spent down as elapsed, as a wall clock would (max_time keeps running while qmux is down).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

__all__ = ["ErrorSnapshot", "JobSnapshot", "SessionSnapshot"]


@frozen
class ErrorSnapshot:
    """A job's error, kept as data: which kind, its message and its machine-readable reason."""

    #: "failed" or "cancelled"
    kind: str
    message: str
    reason: str | None


@frozen
class JobSnapshot:
    job_id: str
    session_id: str | None
    backend: str
    program_id: str
    inputs: Any
    options: Mapping[str, Any]
    #: one of qmux.JobStatus's values
    status: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    value: Any = None
    error: ErrorSnapshot | None = None
    owner: str | None = None
    attempts: int = 0
    tags: tuple[str, ...] = ()


@frozen
class SessionSnapshot:
    session_id: str
    backend: str
    max_time: float
    mode: str
    #: one of SessionState's values: open, active, inactive, closed
    state: str
    accepting_jobs: bool
    closed_reason: str | None
    root_job_id: str | None
    opened_at: float
    started_at: float | None = None
    activated_at: float | None = None
    deactivated_at: float | None = None
    closed_at: float | None = None
    last_job_started: float | None = None
    last_job_completed: float | None = None
    timestamps: tuple[tuple[str, float], ...] = ()
    owner: str | None = None
    failure_policy: str = "continue"
    max_jobs: int | None = None
