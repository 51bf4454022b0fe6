"""qmux's core: the actor system, and nothing else.

Everything here is plain Trio: session actors, backend schedulers and their executors, the
supervisor, the journal's group commit and the snapshots it keeps, the handles users hold, the
error tree and the validators. It imports only trio, attrs, structlog, outcome and the standard
library (``tests/core/test_layers.py`` enforces that). The edges sit on top and reach the core
through this module only: backends (``qmux.backends``), stores (``qmux.journal``), the wire and
the remote client (``qmux._wire``, ``qmux._remote``), the HTTP front doors (``qmux._http``,
``qmux.server``, ``qmux.ibm``), primitives, the CLI.
"""

from __future__ import annotations

from ._backend import Backend, BackendConfig, JobRequest
from ._checks import (
    FAILURE_POLICIES,
    MODES,
    BackendDirectory,
    SessionTerms,
    check_session_request,
    find_backend,
    pick_least_busy,
    session_max_time,
)
from ._duration import format_duration, parse_duration
from ._errors import (
    AuthenticationError,
    BackendNotFoundError,
    BackendUnavailableError,
    CapacityError,
    ClosedReason,
    InvalidInputError,
    JobCancelledError,
    JobError,
    JobFailedError,
    JobNotFoundError,
    NotFoundError,
    QiskitNotInstalledError,
    QmuxError,
    ServiceClosedError,
    SessionClosedError,
    SessionCrashedError,
    SessionNotFoundError,
    StorageError,
    TransientBackendError,
)
from ._events import EVENT_KINDS, Event, EventHub, Subscription
from ._handles import BackendHandle, Batch, ServiceAPI, Session, SessionPort, current_session
from ._ids import new_id
from ._jobs import JOB_EVENT_KINDS, Job, JobChange, JobObserver, JobPort, JobRecord, JobStatus, job_ended
from ._journal import Journal, JournalStore, Ticket
from ._service import Service, run_service
from ._session import SessionActor
from ._session_state import SessionState, status_text
from ._settings import ServiceSettings
from ._snapshots import ErrorSnapshot, JobSnapshot, SessionSnapshot
from ._time import WallClock, wall_now
from ._validate import (
    at_least_one,
    check_flag,
    check_id,
    check_options,
    check_positive_int,
    check_program_id,
    check_tags,
    flag,
    identifier,
    matches,
    non_empty_text,
    non_negative_int,
    non_negative_seconds,
    positive_int,
    positive_seconds,
    tcp_port,
)

__all__ = [
    "EVENT_KINDS",
    "FAILURE_POLICIES",
    "JOB_EVENT_KINDS",
    "MODES",
    "AuthenticationError",
    "Backend",
    "BackendConfig",
    "BackendDirectory",
    "BackendHandle",
    "BackendNotFoundError",
    "BackendUnavailableError",
    "Batch",
    "CapacityError",
    "ClosedReason",
    "ErrorSnapshot",
    "Event",
    "EventHub",
    "InvalidInputError",
    "Job",
    "JobCancelledError",
    "JobChange",
    "JobError",
    "JobFailedError",
    "JobNotFoundError",
    "JobObserver",
    "JobPort",
    "JobRecord",
    "JobRequest",
    "JobSnapshot",
    "JobStatus",
    "Journal",
    "JournalStore",
    "NotFoundError",
    "QiskitNotInstalledError",
    "QmuxError",
    "Service",
    "ServiceAPI",
    "ServiceClosedError",
    "ServiceSettings",
    "Session",
    "SessionActor",
    "SessionClosedError",
    "SessionCrashedError",
    "SessionNotFoundError",
    "SessionPort",
    "SessionSnapshot",
    "SessionState",
    "SessionTerms",
    "StorageError",
    "Subscription",
    "Ticket",
    "TransientBackendError",
    "WallClock",
    "at_least_one",
    "check_flag",
    "check_id",
    "check_options",
    "check_positive_int",
    "check_program_id",
    "check_session_request",
    "check_tags",
    "current_session",
    "find_backend",
    "flag",
    "format_duration",
    "identifier",
    "job_ended",
    "matches",
    "new_id",
    "non_empty_text",
    "non_negative_int",
    "non_negative_seconds",
    "parse_duration",
    "pick_least_busy",
    "positive_int",
    "positive_seconds",
    "run_service",
    "session_max_time",
    "status_text",
    "tcp_port",
    "wall_now",
]
