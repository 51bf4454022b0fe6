"""What a backend is to qmux: a name, a configuration and a way to execute one job.

The core knows nothing of circuits or HTTP. A backend is any object with ``name``, ``config``
and ``async def execute(request) -> object``; qmux stops a running job by cancelling that call,
and whatever it raises fails that job only (SPEC J3). A backend that is also an async context
manager (one that holds a connection, say) is entered when the service starts and left when it
stops.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from attrs import field, frozen, validators

from ._validate import flag, non_negative_int, non_negative_seconds, positive_int, positive_seconds

__all__ = ["Backend", "BackendConfig", "JobRequest"]


@frozen
class BackendConfig:
    """The properties of a backend that the scheduler and the session rules read."""

    #: qubits the device offers; circuits wider than this fail their job
    num_qubits: int = field(default=127, validator=positive_int)
    #: a backend that is not operational refuses new sessions (SPEC S1)
    operational: bool = field(default=True, validator=flag)
    #: a simulator rather than a QPU (SPEC S6 filters on it)
    simulator: bool = field(default=False, validator=flag)
    #: the longest max_time a session may ask for, in seconds (SPEC S4)
    max_ttl: float = field(default=8 * 3600.0, validator=positive_seconds)
    #: interactive time-to-live, in seconds: how long an idle active session keeps the backend (S8)
    interactive_ttl: float = field(default=60.0, validator=positive_seconds)
    #: jobs it runs at once; 1 for a QPU
    concurrency: int = field(default=1, validator=positive_int)
    #: its jobs are safe to run again: after a restart, a job that was running is re-queued
    #: rather than failed as interrupted
    idempotent: bool = field(default=False, validator=flag)
    #: the longest a job may run, in seconds; past it the job is stopped and fails. ``None``: no
    #: limit. A bound for backends that can hang: a running job outlives its session's max_time (S10)
    job_timeout: float | None = field(default=None, validator=validators.optional(positive_seconds))
    #: how many more times a job whose execution raises `TransientBackendError` runs (SPEC R1)
    retries: int = field(default=0, validator=non_negative_int)
    #: seconds before the first retry; each further retry waits twice as long (SPEC R1)
    retry_backoff: float = field(default=1.0, validator=non_negative_seconds)


@frozen
class JobRequest:
    """One job as a backend sees it."""

    job_id: str
    #: ``None`` for a job-mode job
    session_id: str | None
    program_id: str
    inputs: Any
    #: free-form options a front door passes through (shots defaults and the like)
    options: Mapping[str, Any] = field(factory=dict)


@runtime_checkable
class Backend(Protocol):
    """The protocol every backend implements."""

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> BackendConfig: ...

    async def execute(self, request: JobRequest) -> object:
        """Run one job and return its result; cancellation means stop it."""
        ...
