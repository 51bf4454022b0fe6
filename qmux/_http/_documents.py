"""The documents both front doors answer with, in the shapes of IBM's Runtime API, written once.

The native API is modelled on IBM's, so a session, a backend's status and a device entry have
the same shape on both; so does a job's state, whose words are `qmux._wire.JOB_STATES`. Each
API's own schemas (``qmux.server._schemas``, ``qmux.ibm._schemas``) build on these; a document
only one of them serves stays there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

import msgspec

from .. import _wire
from .._core import EVENT_KINDS, BackendHandle, Event, Job, JobError, JobStatus
from .._version import __version__

__all__ = [
    "BackendStatus",
    "Device",
    "DeviceStatus",
    "EventDocument",
    "JobProgram",
    "JobState",
    "SessionDocument",
    "Timestamp",
    "job_state",
    "session_document",
]

Seconds = Annotated[float, msgspec.Meta(ge=0)]
IsoTime = Annotated[str | None, msgspec.Meta(description="UTC ISO-8601 with a trailing Z, or null")]


class _Document(msgspec.Struct, kw_only=True):
    """What a front door answers."""


# -- sessions --------------------------------------------------------------------------------------


class Timestamp(_Document):
    status: str
    timestamp: IsoTime


class SessionDocument(_Document):
    """A session as ``GET /sessions/{id}`` shows it: SPEC S18 under IBM's field names."""

    id: str
    backend_name: str
    #: ITTL in seconds (``details()["interactive_timeout"]``)
    interactive_ttl: Seconds
    #: max_time in seconds (``details()["max_time"]``)
    max_ttl: Seconds
    #: seconds of max_time left (``details()["active_timeout"]``)
    active_ttl: Seconds
    state: Literal["open", "active", "inactive", "closed"]
    accepting_jobs: bool
    last_job_started: IsoTime
    last_job_completed: IsoTime
    started_at: IsoTime
    closed_at: IsoTime
    activated_at: IsoTime
    mode: str
    #: seconds of use (``details()["usage_time"]``)
    elapsed_time: Seconds
    #: the rule that closed it (SPEC S19), or null while it is open
    closed_reason: str | None
    timestamps: list[Timestamp]
    #: "continue" or "abort" (SPEC F1)
    failure_policy: str = "continue"
    #: how many jobs it accepts (SPEC L1); null: no limit
    max_jobs: int | None = None


def session_document(details: Mapping[str, Any]) -> SessionDocument:
    """`Session.details()` (SPEC S18) under IBM's names (`qmux._wire.SESSION_FIELDS`)."""
    return msgspec.convert(
        {_wire.SESSION_FIELDS.get(key, key): value for key, value in details.items()}, SessionDocument
    )


# -- backends --------------------------------------------------------------------------------------


class DeviceStatus(_Document):
    name: Literal["online", "offline"]


class Device(_Document):
    """One entry of ``GET /backends``: what a client's ``least_busy`` sorts and filters on."""

    name: str
    status: DeviceStatus
    #: jobs waiting for this backend (``pending_jobs``; IBM calls it the queue length)
    queue_length: int
    qubits: int

    @classmethod
    def of(cls, handle: BackendHandle, **more: Any) -> Self:
        """`handle`'s entry; `more` fills the fields a subclass adds."""
        config = handle.config
        return cls(
            name=handle.name,
            status=DeviceStatus(name="online" if config.operational else "offline"),
            queue_length=handle.pending_jobs,
            qubits=config.num_qubits,
            **more,
        )


class BackendStatus(_Document):
    """IBM's ``GET /backends/{name}/status``; its client reads ``state`` as ``operational``."""

    state: bool
    status: Literal["active", "inactive"]
    length_queue: int
    backend_version: str
    message: str

    @classmethod
    def of(cls, handle: BackendHandle) -> Self:
        operational = handle.config.operational
        return cls(
            state=operational,
            status="active" if operational else "inactive",
            length_queue=handle.pending_jobs,
            backend_version=__version__,
            message="available" if operational else "not operational",
        )


# -- jobs ------------------------------------------------------------------------------------------


class JobProgram(_Document):
    id: str


class JobState(_Document):
    """A job's ``state``: IBM's word for its status, and why it failed or was cancelled."""

    status: _wire.JobStateName
    #: the job error's message, which names the rule (or the backend's error)
    reason: str | None = None


async def job_state(job: Job) -> tuple[_wire.JobStateName, JobError | None]:
    """A job's ``state.status`` word, and the error of a job that failed or was cancelled (its reason)."""
    status = JobStatus(await job.status())
    error: JobError | None = None
    if status in (JobStatus.ERROR, JobStatus.CANCELLED):
        try:
            await job.result()  # ended: returns or raises at once
        except JobError as failure:
            error = failure
    return _wire.JOB_STATES[status], error


# -- events ----------------------------------------------------------------------------------------


class EventDocument(_Document):
    """One event (SPEC E1): ``qmux.Event``'s fields, the ``data:`` of one Server-Sent Event."""

    kind: Annotated[str, msgspec.Meta(extra_json_schema={"enum": list(EVENT_KINDS)})]
    #: when it happened: UTC ISO-8601 with a trailing Z
    at: str
    #: its place in the server's sequence of events (the SSE ``id``); 0 for ``lagged``
    seq: int
    session_id: str | None
    job_id: str | None
    backend: str | None
    #: ``reason`` (session changes), ``seconds_left`` (warnings), ``missed`` (lagged), ...
    data: dict[str, Any]

    @classmethod
    def of(cls, event: Event) -> Self:
        return cls(
            kind=event.kind,
            at=event.at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            seq=event.seq,
            session_id=event.session_id,
            job_id=event.job_id,
            backend=event.backend,
            data=dict(event.data),
        )
