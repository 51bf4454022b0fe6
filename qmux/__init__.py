"""qmux: an async, actor-based session multiplexer for scarce execution backends.

Open a service, open sessions on its backends, run jobs in them::

    async with qmux.open_service() as service:
        async with qmux.Session(service=service, backend="fake_sherbrooke", max_time="25m") as session:
            job = await session.run("echo", {"x": 1})
            print(await job.result())
"""

from __future__ import annotations

from ._core import (
    AuthenticationError,
    Backend,
    BackendConfig,
    BackendHandle,
    BackendNotFoundError,
    BackendUnavailableError,
    Batch,
    CapacityError,
    ClosedReason,
    Event,
    InvalidInputError,
    Job,
    JobCancelledError,
    JobChange,
    JobError,
    JobFailedError,
    JobNotFoundError,
    JobRequest,
    JobStatus,
    NotFoundError,
    QiskitNotInstalledError,
    QmuxError,
    Service,
    ServiceClosedError,
    ServiceSettings,
    Session,
    SessionClosedError,
    SessionCrashedError,
    SessionNotFoundError,
    StorageError,
    TransientBackendError,
    current_session,
    format_duration,
    parse_duration,
)
from ._open import open_service
from ._remote import OutcomeUnknownError, RemoteService, connect
from ._version import __version__ as __version__
from .primitives import Estimator, Sampler

__all__ = [
    "AuthenticationError",
    "Backend",
    "BackendConfig",
    "BackendHandle",
    "BackendNotFoundError",
    "BackendUnavailableError",
    "Batch",
    "CapacityError",
    "ClosedReason",
    "Estimator",
    "Event",
    "InvalidInputError",
    "Job",
    "JobCancelledError",
    "JobChange",
    "JobError",
    "JobFailedError",
    "JobNotFoundError",
    "JobRequest",
    "JobStatus",
    "NotFoundError",
    "OutcomeUnknownError",
    "QiskitNotInstalledError",
    "QmuxError",
    "RemoteService",
    "Sampler",
    "Service",
    "ServiceClosedError",
    "ServiceSettings",
    "Session",
    "SessionClosedError",
    "SessionCrashedError",
    "SessionNotFoundError",
    "StorageError",
    "TransientBackendError",
    "connect",
    "current_session",
    "format_duration",
    "open_service",
    "parse_duration",
]
