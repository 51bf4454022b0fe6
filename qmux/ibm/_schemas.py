"""The shapes of IBM's Runtime REST API as qiskit-ibm-runtime 0.51 sends and reads them.

Requests are decoded into these structs (wrong types and out-of-range values answer 422 with
the field named), responses are encoded from them. Unlike the native API's request schemas,
unknown request fields are *ignored*, not refused: this front door serves a client qmux does
not control, and a later release of it may send fields this one does not know. The shapes
are those of ``IBM-RUNTIME-WIRE.md``; where a field only matters to qmux, it says so. The
documents both APIs answer with alike (a session, a backend's status, a device entry, a job's
program and state) are `qmux._http`'s; those here are IBM's own, or extend them.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec

from .. import _http

__all__ = [
    "ERROR_CODES",
    "JOBS_PAGE_MAX",
    "BackendConfiguration",
    "BackendList",
    "BackendQuery",
    "CreateSession",
    "IamError",
    "IbmDevice",
    "InstanceUsage",
    "JobCreated",
    "JobDocument",
    "JobList",
    "JobQuery",
    "JobState",
    "JobsQuery",
    "SubmitJob",
    "TokenRequest",
    "TokenResponse",
    "UpdateSession",
    "UpdateTags",
]

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]

#: a failed job's qmux reason -> IBM's numeric ``reason_code``. Only codes whose meaning the
#: client acts on: 1305 makes ``result()`` raise ``RuntimeJobMaxTimeoutError``, which is what
#: a job stopped for outrunning its backend's ``job_timeout`` is (IBM: "ran too long").
ERROR_CODES: Final = {"job_timeout": 1305}
#: the most jobs one ``GET /jobs`` lists (its ``limit``)
JOBS_PAGE_MAX: Final = 1000


class _Request(msgspec.Struct, kw_only=True):
    """What the client sends: unknown fields are ignored (see the module docstring)."""


class _Response(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What the server answers; fields left at their default are left out."""


# -- requests --------------------------------------------------------------------------------------


class TokenRequest(_Request):
    """``POST /identity/token``, form-encoded, as IBM Cloud IAM takes it."""

    grant_type: str
    apikey: str


class CreateSession(_Request):
    """``POST /sessions``: ``Session(...)`` and ``Batch(...)`` send it."""

    backend: Name
    mode: Literal["dedicated", "batch"] = "dedicated"
    #: the instance CRN; one qmux server is one instance, so it is accepted and not checked
    instance: str | None = None
    #: the session's max_time in seconds (SPEC S4); absent: the backend's max_ttl
    max_ttl: Annotated[float, msgspec.Meta(gt=0)] | None = None


class UpdateSession(_Request):
    """``PATCH /sessions/{id}`` with ``{"accepting_jobs": false}``: ``Session.close()``."""

    accepting_jobs: bool


class SubmitJob(_Request):
    """``POST /jobs``: a primitive's ``run()``."""

    program_id: Name
    #: the primitive's inputs in ``RuntimeEncoder`` JSON: ``pubs``, ``options``, ``version``, ...
    params: Any = None
    backend: Name | None = None
    session_id: Name | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    #: IBM's legacy way to open a session with a job; 0.51's ``Session`` never sends true
    start_session: bool = False
    #: a private job: its params are not kept and its result is answered once
    private: bool = False
    #: the calibration the job must run with; it must be the backend's (``GET .../configuration``)
    calibration_id: str | None = None


class UpdateTags(_Request):
    """``PUT /jobs/{id}/tags``: ``job.update_tags(...)`` replaces the job's tags."""

    tags: list[Annotated[str, msgspec.Meta(max_length=256)]]


class BackendQuery(_Request):
    """``GET /backends/{name}/configuration`` and ``/properties``: which calibration, if named."""

    calibration_id: str | None = None


class JobQuery(_Request):
    """``GET /jobs/{id}``: the client's status polls leave the params out."""

    exclude_params: bool = False


class JobsQuery(_Request):
    """``GET /jobs``: ``service.jobs(...)``'s filters and paging; ``tags`` may repeat."""

    limit: Annotated[int, msgspec.Meta(ge=1, le=JOBS_PAGE_MAX)] = 10
    offset: Annotated[int, msgspec.Meta(ge=0)] = 0
    backend: str | None = None
    pending: bool | None = None
    program: str | None = None
    session_id: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    created_after: str | None = None
    created_before: str | None = None
    sort: Literal["ASC", "DESC"] = "DESC"
    #: also list the jobs of mock backends (IBM's dry-run twins)
    include_mocks: bool = False


# -- responses -------------------------------------------------------------------------------------


class TokenResponse(_Response):
    """What IBM Cloud IAM answers; the client reads ``exp`` and ``iat`` inside the JWT."""

    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    expiration: int
    scope: str


class IamError(_Response):
    """IAM's error shape, which ``ibm_cloud_sdk_core`` reads ``errorMessage`` from."""

    error_code: str = msgspec.field(name="errorCode")
    error_message: str = msgspec.field(name="errorMessage")


class IbmDevice(_http.Device, kw_only=True):
    """A device entry of IBM's ``GET /backends``: the shared one, with IBM's class and physical qubit count."""

    #: the client's ``backend.physical_qubits``: qubits of the chip (here, all of them are usable)
    physical_qubits: int
    #: ``"mock"`` marks IBM's dry-run twin of a device, which the client lists only when asked
    device_class: Literal["qpu", "simulator", "mock"] = msgspec.field(name="class")


class BackendList(_Response):
    """``GET /backends``: IBM's device entries, without configuration."""

    devices: list[IbmDevice]


class BackendConfiguration(msgspec.Struct, kw_only=True):
    """``GET /backends/{name}/configuration``: what the client builds its ``Target`` from, with the properties.

    On a ``"full"`` coupling map there are no per-gate ``gates`` entries, so multi-qubit gates
    are *global*: they apply to any qubits (``coupling_map`` lists every ordered pair to say the
    same thing to readers of the configuration itself). Otherwise each gate lists the qubits it
    may act on (`qmux.ibm._backends`).
    """

    backend_name: str
    backend_version: str
    online_date: str
    n_qubits: int
    basis_gates: list[str]
    gates: list[Any]
    coupling_map: list[tuple[int, int]]
    supported_instructions: list[str]
    local: bool
    simulator: bool
    conditional: bool
    open_pulse: bool
    memory: bool
    max_shots: int
    max_experiments: int
    description: str
    #: qmux's own: the session limits a client cannot otherwise see before opening a session
    max_ttl: float
    interactive_ttl: float
    #: the calibration the properties describe; ``?calibration_id=`` must name it
    calibration_id: str


class JobCreated(_Response):
    """``POST /jobs``'s answer: the client needs ``id`` and ``backend``."""

    id: str
    backend: str
    session_id: str | None = None


class JobState(_http.JobState, omit_defaults=True):
    """The shared job state, with IBM's numeric reason code; absent fields are left out."""

    #: the code of a failed job's reason the client acts on (`ERROR_CODES`)
    reason_code: int | None = None


class JobDocument(_Response):
    """``GET /jobs/{id}``: polled every 0.1 s per session job, so built from O(1) lookups."""

    id: str
    backend: str
    state: JobState
    program: _http.JobProgram
    session_id: str | None = None
    #: UTC ISO-8601 of the submission, when this front door took it
    created: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    private: bool = False
    #: the job's params in ``RuntimeEncoder`` JSON (``job.inputs``), unless excluded or private
    params: msgspec.Raw | None = None


class InstanceUsage(_Response):
    """``GET /instances/usage``: ``service.usage()`` reads the consumption, and whether a limit is reached."""

    instance_id: str
    plan_id: str
    #: the quantum seconds of the tenant's jobs (SPEC U1)
    usage_consumed_seconds: float
    #: qmux sets no limit: never
    usage_limit_reached: bool


class JobList(_Response):
    """``GET /jobs``: ``count`` is the number matching before ``limit`` and ``offset``."""

    jobs: list[JobDocument]
    count: int
    limit: int
    offset: int
