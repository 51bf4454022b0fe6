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
    "ID_PATTERN",
    "BackendConfiguration",
    "BackendList",
    "CreateSession",
    "Device",
    "JobDocument",
    "JobQuery",
    "ResultsQuery",
    "SubmitJob",
    "UpdateSession",
]

#: qmux ids: 20 lowercase hex characters (``secrets.token_hex(10)``)
ID_PATTERN = "^[0-9a-f]{20}$"

Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN, description="a qmux id: 20 lowercase hex characters")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
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
