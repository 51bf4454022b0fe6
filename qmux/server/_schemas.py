"""The shapes of the native API: request bodies, query strings and responses, as msgspec structs.

One declaration serves three purposes: decoding and validating what clients send (unknown
fields, wrong types and out-of-range values are refused with a message naming the field),
encoding what the server answers, and the JSON Schemas of ``/openapi.json``. So the document
cannot say something the server does not do.

Names follow IBM's Runtime API where it has one (see ``IBM-RUNTIME-WIRE.md``): ``max_ttl``,
``interactive_ttl``, ``devices``, a job's ``state.status``. The documents both APIs answer with
alike (a session, a backend's status, a device entry) are `qmux._http`'s; this module adds what
only the native API says.
"""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Annotated, Any, Literal

import attrs
import msgspec

from .. import _http, _wire
from .._core import BackendConfig
from .._http import IsoTime, Seconds

__all__ = [
    "DEFAULT_PAGE",
    "ID_PATTERN",
    "MAX_PAGE",
    "BackendConfiguration",
    "BackendList",
    "BackendUsage",
    "CreateSession",
    "Device",
    "EventsQuery",
    "JobDocument",
    "JobList",
    "JobQuery",
    "JobsQuery",
    "QueueInfo",
    "QueuePosition",
    "ResultsQuery",
    "SessionList",
    "SessionsQuery",
    "SubmitJob",
    "Tags",
    "UpdateSession",
    "UsageDocument",
    "UsageQuery",
]

#: qmux ids: 20 lowercase hex characters (``secrets.token_hex(10)``)
ID_PATTERN = "^[0-9a-f]{20}$"

Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN, description="a qmux id: 20 lowercase hex characters")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
#: a listing's page: this many items unless asked for fewer, and at most `MAX_PAGE`
DEFAULT_PAGE = 100
MAX_PAGE = 1000
PageSize = Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE, description="items in this page, at most")]
Instant = Annotated[
    str, msgspec.Meta(max_length=64, description="ISO-8601 with a UTC offset, e.g. 2026-11-24T13:00:00+00:00")
]
Cursor = Annotated[str, msgspec.Meta(max_length=512, description="the `next` of the previous page, as it was")]
Seed = Annotated[
    str,
    msgspec.Meta(
        pattern=_wire.SEED_PATTERN,
        description="20 lowercase hex characters, drawn at random; the session's id is derived from it and the "
        "tenant's token: sha256('qmux session id' NUL token_sha256 NUL seed), its first 20 hex characters",
    ),
]


class _Request(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Bodies and queries clients send: unknown fields are an error, not silently dropped."""


class _Response(msgspec.Struct, kw_only=True):
    """What the server answers."""


# -- requests --------------------------------------------------------------------------------------


class CreateSession(_Request):
    """Open a session on one backend (SPEC S1, S4)."""

    backend: Name
    #: the session's max_time in seconds (SPEC S4); null: the backend's max_ttl
    max_ttl: Annotated[float, msgspec.Meta(gt=0, description="max_time in seconds; null: the backend's")] | None = None
    mode: Literal["dedicated", "batch"] = "dedicated"
    #: "continue" (SPEC J3) or "abort": the first failed job closes the session (F1)
    failure_policy: str = "continue"
    #: the session accepts this many jobs, then closes once they have run (L1); null: no limit
    max_jobs: int | None = None
    #: a random seed the client draws, so that it knows the session's id before the answer: the id is
    #: `qmux._wire.session_id_from_seed` of the tenant's token digest and this seed (sending it again
    #: is a retried create, answered with the same session)
    id_seed: Seed | None = None
    #: sent by IBM's client; accepted and ignored (one qmux server is one instance)
    instance: str | None = None


class UpdateSession(_Request):
    """``{"accepting_jobs": false}`` closes the session (SPEC S12); nothing else may change."""

    accepting_jobs: bool


class SubmitJob(_Request):
    """Submit a job to a session, or to a backend in job mode (no ``session_id``)."""

    program_id: Name
    #: required in job mode; with a session it must name the session's backend, if given
    backend: Name | None = None
    session_id: Id | None = None
    #: the job's inputs, in the wire encoding of ``qmux._wire`` (JSON, with typed objects)
    params: Any = None
    #: free-form options passed through to the backend, in the same encoding
    options: dict[str, Any] | None = None
    #: labels for the job (SPEC T1): at most 32 strings of 1 to 128 characters
    tags: list[str] = msgspec.field(default_factory=list)


class ResultsQuery(_Request):
    """``?wait=S``: hold the request up to S seconds for the job to end (a long poll)."""

    wait: Annotated[
        float,
        msgspec.Meta(
            ge=0, le=600, description="seconds to wait for the job to end; the server holds at most its long-poll limit"
        ),
    ] = 0.0


class JobQuery(_Request):
    """IBM's client asks ``?exclude_params=true``; qmux never echoes params anyway."""

    exclude_params: bool = False


class SessionsQuery(_Request):
    """``GET /sessions``: the tenant's sessions, newest first (SPEC V1), a page at a time."""

    backend: Name | None = None
    #: ``open``, ``active``, ``inactive`` or ``closed``
    state: str | None = None
    created_after: Instant | None = None
    created_before: Instant | None = None
    limit: PageSize = DEFAULT_PAGE
    cursor: Cursor | None = None


class JobsQuery(_Request):
    """``GET /jobs``: the tenant's jobs, newest first (SPEC V1), a page at a time.

    ``tags`` may repeat: a job is listed if it has all of them (T1).
    """

    #: ``QUEUED``, ``RUNNING``, ``DONE``, ``ERROR`` or ``CANCELLED``
    status: str | None = None
    session_id: Id | None = None
    backend: Name | None = None
    created_after: Instant | None = None
    created_before: Instant | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    limit: PageSize = DEFAULT_PAGE
    cursor: Cursor | None = None


class EventsQuery(_Request):
    """``GET /events``: one session's events, one job's, or all the tenant's (of one backend)."""

    session_id: Id | None = None
    job_id: Id | None = None
    backend: Name | None = None
    #: with session_id or job_id: start with its state now (``session.events()``); false: only what happens
    current: bool = True


class UsageQuery(_Request):
    """``GET /usage``: the window; a job counts if it ran in it (SPEC U1)."""

    since: Instant | None = None
    until: Instant | None = None


class Tags(_Request):
    """``PUT /jobs/{id}/tags``: the job's labels, replacing those it had (SPEC T1)."""

    tags: list[str]


# -- responses -------------------------------------------------------------------------------------


def _backend_configuration() -> type[msgspec.Struct]:
    """`qmux.BackendConfig` as a struct, field for field: a field the core adds appears here too."""
    hints = typing.get_type_hints(BackendConfig)
    struct = msgspec.defstruct(
        "BackendConfiguration",
        [(f.name, hints[f.name]) for f in attrs.fields(BackendConfig)],
        kw_only=True,
        module=__name__,
    )
    struct.__doc__ = "A backend's `qmux.BackendConfig`: what the session rules read."
    return struct


if TYPE_CHECKING:

    class BackendConfiguration(_Response):
        """Generated from `qmux.BackendConfig` at import."""

else:
    BackendConfiguration = _backend_configuration()


class Device(_http.Device):
    """One entry of ``GET /backends``: IBM's device entry, with the backend's whole configuration."""

    configuration: BackendConfiguration


class BackendList(_Response):
    devices: list[Device]


class JobTimes(_Response):
    created: IsoTime
    running: IsoTime
    finished: IsoTime


class JobUsage(_Response):
    quantum_seconds: Seconds
    seconds: Seconds


class JobMetrics(_Response):
    """``job.metrics()`` (SPEC U1): IBM's shape, plus the time it queued and its attempts (R1)."""

    timestamps: JobTimes
    usage: JobUsage
    queue_seconds: Seconds
    attempts: int


class JobDocument(_Response):
    """A job as ``GET /jobs/{id}`` shows it (IBM's shape)."""

    id: str
    backend: str
    session_id: str | None
    program: _http.JobProgram
    state: _http.JobState
    #: its labels (SPEC T1)
    tags: list[str] = msgspec.field(default_factory=list)
    #: when it was created (IBM's ``created``); listings are newest first by it, then by id
    created: IsoTime = None


class SessionList(_Response):
    """A page of sessions, newest first; `next` is the cursor of the next page (null: none)."""

    sessions: list[_http.SessionDocument]
    next: str | None


class JobList(_Response):
    """A page of jobs, newest first; `next` is the cursor of the next page (null: none)."""

    jobs: list[JobDocument]
    next: str | None


class BackendUsage(_Response):
    #: jobs that ran on the backend in the window
    jobs: int
    #: the seconds they ran
    quantum_seconds: Seconds


class UsageDocument(_Response):
    """``GET /usage`` (SPEC U1): the tenant's usage per backend over the window."""

    backends: dict[str, BackendUsage]


class QueueInfo(_Response):
    """``GET /backends/{name}/queue`` (SPEC Q1): jobs of active sessions and batches, and jobs in the line."""

    priority: int
    normal: int


class QueuePosition(_Response):
    """``GET /jobs/{id}/queue`` (SPEC Q1): jobs that start before it (0: next); null once it runs or ended."""

    position: int | None
