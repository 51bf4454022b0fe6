"""Names on the wire: where the server speaks IBM's words, and the tables that translate both ways.

The server answers in IBM's Runtime API vocabulary where it has one (job states such as
``Completed``, session fields such as ``max_ttl``); the native API, the IBM-compatible API and
the remote client all read these tables, so each side has one source of truth.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

from .._core import JobStatus

__all__ = ["JOB_STATES", "SESSION_FIELDS", "JobStateName"]

#: the ``state.status`` words of IBM's job document
JobStateName = Literal["Queued", "Running", "Completed", "Failed", "Cancelled"]

#: qmux's job status -> the ``state.status`` word of IBM's job document
JOB_STATES: Final[Mapping[JobStatus, JobStateName]] = {
    JobStatus.QUEUED: "Queued",
    JobStatus.RUNNING: "Running",
    JobStatus.DONE: "Completed",
    JobStatus.ERROR: "Failed",
    JobStatus.CANCELLED: "Cancelled",
}

#: the keys of ``Session.details()`` (SPEC S18) -> the names IBM's session document uses
SESSION_FIELDS: Final[Mapping[str, str]] = {
    "interactive_timeout": "interactive_ttl",
    "max_time": "max_ttl",
    "active_timeout": "active_ttl",
    "usage_time": "elapsed_time",
}
