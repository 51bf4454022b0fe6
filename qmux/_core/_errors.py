"""The exceptions qmux raises, all under one root.

    QmuxError
    ├── InvalidInputError      (also a ValueError) a bad argument: names the value and what is allowed
    ├── NotFoundError          (also a LookupError) no such thing, or not yours to see
    │   ├── BackendNotFoundError   no backend by that name
    │   ├── SessionNotFoundError   no session with that id
    │   └── JobNotFoundError       no job with that id
    ├── BackendUnavailableError  the backend exists but is not operational, or none matches a query
    ├── CapacityError          a bounded mailbox or queue is full: refused at once, nothing queued
    ├── ServiceClosedError     the service is shutting down or has shut down
    ├── AuthenticationError    a remote service refused the credentials (HTTP 401)
    ├── StorageError           the journal could not be read or written; nothing was acknowledged
    ├── QiskitNotInstalledError  (also an ImportError) a primitive needs the optional qiskit extra
    ├── SessionClosedError     the session no longer accepts jobs; `reason` says which rule ended it
    │   └── SessionCrashedError  the session's actor failed; its jobs fail with this error
    └── JobError               a job did not produce a result; `job_id` names it
        ├── JobFailedError     the backend raised, or a session rule failed the job (`reason`)
        └── JobCancelledError  the job was cancelled, by itself or with its session

A backend's own exception is kept as ``__cause__`` of the `JobFailedError` it becomes, so a
caller can inspect it without qmux guessing at its type.
"""

from __future__ import annotations

import enum
from typing import final

__all__ = [
    "AuthenticationError",
    "BackendNotFoundError",
    "BackendUnavailableError",
    "CapacityError",
    "ClosedReason",
    "InvalidInputError",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "JobNotFoundError",
    "NotFoundError",
    "QiskitNotInstalledError",
    "QmuxError",
    "ServiceClosedError",
    "SessionClosedError",
    "SessionCrashedError",
    "SessionNotFoundError",
    "StorageError",
    "TransientBackendError",
]


class ClosedReason(enum.Enum):
    """Which rule ended a session (SPEC S19: a user-facing error names it)."""

    #: closed by the user (``close()`` or leaving ``async with``), SPEC S12
    CLOSED = "closed"
    #: cancelled by the user, SPEC S13
    CANCELLED = "cancelled"
    #: its max_time ran out, SPEC S10
    MAX_TIME = "max_time"
    #: its root job was cancelled, SPEC S14
    ROOT_JOB_CANCELLED = "root_job_cancelled"
    #: no job arrived within the idle-at-open delay, SPEC S19
    IDLE_AT_OPEN = "idle_at_open"
    #: one of its jobs failed and its failure_policy is "abort", SPEC F1
    JOB_FAILED = "job_failed"
    #: it ran the max_jobs it was opened for, SPEC L1
    MAX_JOBS = "max_jobs"
    #: its actor failed unexpectedly
    CRASHED = "crashed"
    #: the service shut down
    SERVICE_SHUTDOWN = "service_shutdown"


class QmuxError(Exception):
    """Root of every error qmux raises on purpose."""


@final
class InvalidInputError(QmuxError, ValueError):
    """An argument is malformed or out of range; the message names it and what is allowed."""


class NotFoundError(QmuxError, LookupError):
    """The named backend, session or job does not exist (or belongs to someone else)."""


@final
class BackendNotFoundError(NotFoundError):
    """No backend has the requested name."""


@final
class SessionNotFoundError(NotFoundError):
    """No session has the requested id."""


@final
class JobNotFoundError(NotFoundError):
    """No job has the requested id."""


class TransientBackendError(QmuxError):
    """Raised by a backend for a failure worth retrying (SPEC R1): a busy device, a dropped link.

    A backend whose config allows retries runs the job again, up to ``retries`` more times with
    backoff, never past its session's max_time; any other exception fails the job at once.
    Subclass it for your own transient failures.
    """


@final
class BackendUnavailableError(QmuxError):
    """The backend is not operational, or no backend matches a query."""


@final
class CapacityError(QmuxError):
    """A bounded mailbox or queue is full; the request was refused and nothing was queued."""


@final
class ServiceClosedError(QmuxError):
    """The service is shutting down or has shut down."""


@final
class AuthenticationError(QmuxError):
    """A remote service refused the request's credentials: no bearer token, or an unknown one."""


@final
class QiskitNotInstalledError(QmuxError, ImportError):
    """A primitive (or a simulated QPU's sampler/estimator program) was used without qiskit installed."""


@final
class StorageError(QmuxError):
    """The journal could not be read or written; what was not written was not acknowledged."""


class SessionClosedError(QmuxError):
    """The session does not accept jobs any more (SPEC S15).

    `reason` is the rule that closed it; `root_job_id` is set when the root job's cancellation
    closed it (SPEC S14).
    """

    def __init__(
        self,
        message: str,
        *,
        session_id: str,
        reason: ClosedReason,
        root_job_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.session_id = session_id
        self.reason = reason
        self.root_job_id = root_job_id


@final
class SessionCrashedError(SessionClosedError):
    """The session's actor failed; every job it held fails with this error."""


class JobError(QmuxError):
    """A job ended without a result."""

    def __init__(self, message: str, *, job_id: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        #: a short machine-readable cause: "backend_error", "max_time", "root_job_cancelled", ...
        self.reason = reason


@final
class JobFailedError(JobError):
    """The job failed: its backend raised (see ``__cause__``) or a session rule failed it."""


@final
class JobCancelledError(JobError):
    """The job was cancelled, on its own or with its session."""
