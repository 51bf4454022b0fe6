"""A session's states, as IBM's API names them, and what users read of them (SPEC S17, S18)."""

from __future__ import annotations

import enum

__all__ = ["SessionState", "status_text"]


class SessionState(enum.Enum):
    """The server-side state of a session, as IBM's API names it (SPEC S18)."""

    #: opened, no job has started yet (S3)
    OPEN = "open"
    #: holds its backend: its jobs run first (S7)
    ACTIVE = "active"
    #: deactivated after an ITTL gap; its next job waits in line (S9)
    INACTIVE = "inactive"
    #: ended for good; `closed_reason` says why
    CLOSED = "closed"


def status_text(state: SessionState, accepting_jobs: bool) -> str:
    """The user-facing status (SPEC S17), mapped from state as qiskit-ibm-runtime maps it."""
    if state is SessionState.ACTIVE:
        return "In progress, accepting new jobs" if accepting_jobs else "In progress, not accepting new jobs"
    if state is SessionState.CLOSED:
        return "Closed"
    return "Pending"
