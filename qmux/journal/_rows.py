"""What the journal keeps: one row per session and per job, the latest snapshot of each.

Times are UTC wall-clock seconds (POSIX timestamps), so that a restarted process can count the
time it spent down as elapsed, as a wall clock would (max_time keeps running while qmux is down).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

__all__ = ["ErrorRow", "JobRow", "SessionRow"]


@frozen
class ErrorRow:
    """A job's error, kept as data: which kind, its message and its machine-readable reason."""

    #: "failed" or "cancelled"
    kind: str
    message: str
    reason: str | None


@frozen
class JobRow:
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
    error: ErrorRow | None = None
    owner: str | None = None


@frozen
class SessionRow:
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
