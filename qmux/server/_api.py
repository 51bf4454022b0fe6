"""The REST API: one handler per route, each a thin call into `qmux.Service`, and the route table.

The handlers never re-implement a session rule: they check who owns what, decode the wire
encoding, call the same public API an in-process user calls (``service.session(id)``,
``session.run(...)``, ``job.result()``), and encode the answer. Every rule and every error
comes from the core, so the HTTP front door cannot drift from it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Final, cast, final

import msgspec
import structlog
import trio

from .. import _wire
from .._core import (
    BackendHandle,
    InvalidInputError,
    Job,
    JobError,
    JobNotFoundError,
    JobStatus,
    QmuxError,
    Service,
    ServiceClosedError,
    Session,
    SessionNotFoundError,
)
from ._config import ServerSettings
from ._http import RAW_JSON, Reply, Request, Route
from ._openapi import openapi_document
from ._schemas import (
    BackendConfiguration,
    BackendList,
    BackendStatus,
    CreateSession,
    Device,
    DeviceStatus,
    JobDocument,
    JobMetrics,
    JobProgram,
    JobQuery,
    JobState,
    JobStateName,
    ResultsQuery,
    SessionDocument,
    SubmitJob,
    UpdateSession,
)

__all__ = ["ROUTES", "Api"]

_log = structlog.get_logger("qmux.server")


@final
class Api:
    """The handlers, over one service. Its own state: who owns what, and whether it is stopping."""

    def __init__(self, service: Service, settings: ServerSettings) -> None:
        self.service = service
        self.settings = settings
        self._stopping = False
        self._long_polls: set[trio.CancelScope] = set()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def begin_shutdown(self) -> None:
        """Refuse new sessions and jobs from now on, and answer every waiting long poll at once."""
        self._stopping = True
        for scope in list(self._long_polls):
            scope.cancel()

    def pending_jobs(self) -> dict[str, int]:
        """Each backend's queue depth, for the ``Qmux-Pending-Jobs`` header."""
        return {handle.name: handle.pending_jobs for handle in self.service.backends()}

    # -- backends ----------------------------------------------------------------------------

    async def list_backends(self, request: Request) -> Reply:
        return Reply.json(200, BackendList(devices=[_device(handle) for handle in self.service.backends()]))

    async def backend_status(self, request: Request) -> Reply:
        handle = self.service.backend(request.params["backend"])
        operational = handle.config.operational
        return Reply.json(
            200,
            BackendStatus(
                state=operational,
                status="active" if operational else "inactive",
                length_queue=handle.pending_jobs,
                backend_version=_version(),
                message="available" if operational else "not operational",
            ),
        )

    # -- sessions ----------------------------------------------------------------------------

    async def create_session(self, request: Request) -> Reply:
        body: CreateSession = request.body
        self._refuse_new_work()
        if body.id is not None and self.service.session_owner(body.id) == request.tenant:
            existing = await self.service.session(body.id)
            if existing.backend_name == body.backend:  # a retried create: answer it again (idempotent)
                return Reply.json(200, session_document(await existing.details()))
        port = self.service.open_session_port(
            body.backend,
            max_time=body.max_ttl,
            mode=body.mode,
            failure_policy=body.failure_policy,
            max_jobs=body.max_jobs,
            session_id=body.id,
            owner=request.tenant,
        )
        _log.info("http.session_opened", session_id=port.session_id, tenant=request.tenant, backend=body.backend)
        return Reply.json(201, session_document(await port.details()))

    async def get_session(self, request: Request) -> Reply:
        session = await self._session(request.tenant, request.params["session_id"])
        return Reply.json(200, session_document(await session.details()))

    async def update_session(self, request: Request) -> Reply:
        body: UpdateSession = request.body
        session = await self._session(request.tenant, request.params["session_id"])
        if body.accepting_jobs:
            raise InvalidInputError(
                'a session cannot start accepting jobs again; the one change allowed is {"accepting_jobs": false}, '
                "which closes it"
            )
        await session.close()
        return Reply.empty()

    async def cancel_session(self, request: Request) -> Reply:
        session = await self._session(request.tenant, request.params["session_id"])
        await session.cancel()
        return Reply.empty()

    # -- jobs --------------------------------------------------------------------------------

    async def submit_job(self, request: Request) -> Reply:
        body: SubmitJob = request.body
        self._refuse_new_work()
        session: Session | None = None
        if body.session_id is not None:  # whose and where first; decoding the inputs may be costly
            session = await self._session(request.tenant, body.session_id)
            if body.backend is not None and body.backend != session.backend_name:
                raise InvalidInputError(
                    f"backend={body.backend!r} but session {body.session_id} runs on {session.backend_name!r}; "
                    "leave backend out or name the session's"
                )
        elif body.backend is None:
            raise InvalidInputError("a job needs a session_id, or a backend to run on in job mode")
        else:
            self.service.backend(body.backend)
        limit = self.settings.max_blob_bytes
        inputs = _wire.decode(body.params, max_blob_bytes=limit)
        options = _wire.decode(body.options, max_blob_bytes=limit) if body.options else None
        if session is not None:  # its jobs are the session owner's
            job = await session.run(body.program_id, inputs, options=options)
        else:
            assert body.backend is not None
            job = Job(
                await self.service.submit_job(body.backend, body.program_id, inputs, options, owner=request.tenant)
            )
        return Reply.json(201, await job_document(job))

    async def get_job(self, request: Request) -> Reply:
        job = await self._job(request.tenant, request.params["job_id"])
        return Reply.json(200, await job_document(job))

    async def job_metrics(self, request: Request) -> Reply:
        job = await self._job(request.tenant, request.params["job_id"])
        return Reply.json(200, msgspec.convert(await job.metrics(), JobMetrics))

    async def job_results(self, request: Request) -> Reply:
        """The result once the job has ended (200), its error (409), or 202 if still running.

        ``?wait=S`` holds the request until the job ends, S seconds pass (capped by the
        server's long-poll limit), or the server begins to shut down: waiting without polling.
        """
        job = await self._job(request.tenant, request.params["job_id"])
        query: ResultsQuery = request.query
        wait = 0.0 if self._stopping else min(query.wait, self.settings.long_poll)
        if wait > 0 and not JobStatus(await job.status()).is_final:
            with trio.move_on_after(wait) as scope:
                self._long_polls.add(scope)
                try:
                    await job.result()
                except JobError:
                    pass
                finally:
                    self._long_polls.discard(scope)
        if not JobStatus(await job.status()).is_final:
            return Reply.json(202, await job_document(job))
        value = await job.result()  # a failed or cancelled job raises its JobError: a 409 answer
        try:
            body = msgspec.json.encode(_wire.encode(value))
        except InvalidInputError as exc:
            raise QmuxError(f"job {job.job_id} finished, but its result cannot be sent over HTTP: {exc}") from exc
        return Reply(200, body, {"content-type": "application/json"})

    async def cancel_job(self, request: Request) -> Reply:
        job = await self._job(request.tenant, request.params["job_id"])
        await job.cancel()
        return Reply.empty()

    # -- the API's description ---------------------------------------------------------------

    async def openapi(self, request: Request) -> Reply:
        return Reply(200, _openapi_bytes(), {"content-type": "application/json"})

    # -- helpers -----------------------------------------------------------------------------

    def _refuse_new_work(self) -> None:
        if self._stopping:
            raise ServiceClosedError("the server is shutting down and accepts no new sessions or jobs")

    async def _session(self, tenant: str, session_id: str) -> Session:
        """The tenant's session (the core keeps its owner, journal included), else the 404 of an unknown id."""
        if self.service.session_owner(session_id) != tenant:
            raise SessionNotFoundError(f"no session with id {session_id!r}")
        return await self.service.session(session_id)

    async def _job(self, tenant: str, job_id: str) -> Job:
        if self.service.job_owner(job_id) != tenant:
            raise JobNotFoundError(f"no job with id {job_id!r}")
        return await self.service.job(job_id)


def _device(handle: BackendHandle) -> Device:
    config = handle.config
    return Device(
        name=handle.name,
        status=DeviceStatus(name="online" if config.operational else "offline"),
        queue_length=handle.pending_jobs,
        qubits=config.num_qubits,
        configuration=msgspec.convert(
            {name: getattr(config, name) for name in BackendConfiguration.__struct_fields__}, BackendConfiguration
        ),
    )


def session_document(details: Mapping[str, Any]) -> SessionDocument:
    """`Session.details()` (SPEC S18) under IBM's names; the client renames them back."""
    return msgspec.convert(
        {_wire.SESSION_FIELDS.get(key, key): value for key, value in details.items()}, SessionDocument
    )


async def job_document(job: Job) -> JobDocument:
    status = JobStatus(await job.status())
    reason: str | None = None
    if status in (JobStatus.ERROR, JobStatus.CANCELLED):
        try:
            await job.result()
        except JobError as error:
            reason = str(error)
    return JobDocument(
        id=job.job_id,
        backend=job.backend_name,
        session_id=job.session_id,
        program=JobProgram(id=job.program_id),
        state=JobState(status=cast("JobStateName", _wire.JOB_STATES[status]), reason=reason),
    )


def _version() -> str:
    from .._version import __version__

    return __version__


# -- the route table: dispatch and /openapi.json both read it --------------------------------------

_ID_ROUTE_ERRORS = (404,)

ROUTES: Final[tuple[Route, ...]] = (
    Route(
        "GET",
        "/backends",
        "list_backends",
        "List the backends, their configuration and queue depth",
        Api.list_backends,
        ok={200: BackendList},
    ),
    Route(
        "GET",
        "/backends/{backend}/status",
        "get_backend_status",
        "One backend's status (IBM's shape)",
        Api.backend_status,
        ok={200: BackendStatus},
        errors=(404,),
    ),
    Route(
        "POST",
        "/sessions",
        "create_session",
        "Open a session on a backend (SPEC S1, S4)",
        Api.create_session,
        ok={201: SessionDocument, 200: SessionDocument},
        errors=(404, 409),
        body=CreateSession,
        description=(
            "A client may propose the session's `id` (20 hex characters). Repeating the same request "
            "with the same id answers 200 with the session as it is now, so a retried create is harmless."
        ),
    ),
    Route(
        "GET",
        "/sessions/{session_id}",
        "get_session",
        "A session's details (SPEC S18, IBM's field names)",
        Api.get_session,
        ok={200: SessionDocument},
        errors=_ID_ROUTE_ERRORS,
    ),
    Route(
        "PATCH",
        "/sessions/{session_id}",
        "close_session",
        'Close a session with {"accepting_jobs": false}: queued jobs still run (SPEC S12)',
        Api.update_session,
        ok={204: None},
        errors=_ID_ROUTE_ERRORS,
        body=UpdateSession,
    ),
    Route(
        "DELETE",
        "/sessions/{session_id}/close",
        "cancel_session",
        "Cancel a session: queued jobs fail as cancelled, running ones finish (SPEC S13)",
        Api.cancel_session,
        ok={204: None},
        errors=_ID_ROUTE_ERRORS,
    ),
    Route(
        "POST",
        "/jobs",
        "submit_job",
        "Submit a job to a session, or to a backend in job mode",
        Api.submit_job,
        ok={201: JobDocument},
        errors=(404, 409),
        body=SubmitJob,
        description="`params` and `options` are in qmux's wire encoding: JSON, with typed objects for circuits, "
        "arrays and primitive results (see `qmux._wire`).",
    ),
    Route(
        "GET",
        "/jobs/{job_id}",
        "get_job",
        "A job's status (SPEC J1)",
        Api.get_job,
        ok={200: JobDocument},
        errors=_ID_ROUTE_ERRORS,
        query=JobQuery,
    ),
    Route(
        "GET",
        "/jobs/{job_id}/results",
        "get_job_results",
        "A job's result; ?wait=S long-polls until it ends",
        Api.job_results,
        ok={200: RAW_JSON, 202: JobDocument},
        errors=(404, 409),
        query=ResultsQuery,
        description="200: the result in the wire encoding. 202: not finished within `wait`; the body is the job. "
        "409: the job failed or was cancelled; the error names the job and the reason.",
    ),
    Route(
        "GET",
        "/jobs/{job_id}/metrics",
        "get_job_metrics",
        "A job's metrics (SPEC U1): timestamps, usage, queue time, attempts",
        Api.job_metrics,
        ok={200: JobMetrics},
        errors=_ID_ROUTE_ERRORS,
    ),
    Route(
        "POST",
        "/jobs/{job_id}/cancel",
        "cancel_job",
        "Cancel a job (SPEC J2); harmless once it has ended (S16)",
        Api.cancel_job,
        ok={204: None},
        errors=_ID_ROUTE_ERRORS,
    ),
    Route(
        "GET",
        "/openapi.json",
        "get_openapi",
        "This API's OpenAPI 3.1 description",
        Api.openapi,
        ok={200: RAW_JSON},
        public=True,
    ),
)


@functools.cache
def _openapi_bytes() -> bytes:
    return msgspec.json.encode(openapi_document(ROUTES, version=_version()))
