"""The native API's route table: dispatch and ``/openapi.json`` both read it."""

from __future__ import annotations

import functools
from typing import Final

import msgspec

from .._http import RAW_JSON, BackendStatus, Reply, Request, Route, SessionDocument, handlers, openapi_document
from .._version import __version__
from ._api import PENDING_JOBS_HEADER, Api
from ._schemas import (
    BackendList,
    CreateSession,
    JobDocument,
    JobMetrics,
    JobQuery,
    ResultsQuery,
    SubmitJob,
    UpdateSession,
)

__all__ = ["ROUTES", "openapi_bytes"]

_ID_ROUTE_ERRORS = (404,)
_DESCRIPTION: Final = (
    "A session multiplexer for scarce backends, modelled on IBM Quantum's Runtime API. Every request "
    "but this document's carries `Authorization: Bearer <token>`; a tenant sees only its own sessions "
    "and jobs (another tenant's id answers 404)."
)


async def get_openapi(api: object, request: Request) -> Reply:
    """This API's OpenAPI document (the same bytes every time)."""
    return Reply(200, openapi_bytes(), {"content-type": "application/json"})


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
        handlers.backend_status,
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
        errors=(404, 409, 429),
        body=CreateSession,
        description=(
            "A client that wants the session's id before the answer sends a random `id_seed` (20 hex "
            "characters): the id is the first 20 hex characters of sha256('qmux session id' NUL "
            "token_sha256 NUL seed), in the tenant's own namespace, so no answer says anything about "
            "another tenant's ids. Repeating the request with the same seed answers 200 with the session "
            "as it is now, so a retried create is harmless. Past the tenant's open sessions: 429."
        ),
    ),
    Route(
        "GET",
        "/sessions/{session_id}",
        "get_session",
        "A session's details (SPEC S18, IBM's field names)",
        handlers.get_session,
        ok={200: SessionDocument},
        errors=_ID_ROUTE_ERRORS,
    ),
    Route(
        "PATCH",
        "/sessions/{session_id}",
        "close_session",
        'Close a session with {"accepting_jobs": false}: queued jobs still run (SPEC S12)',
        handlers.close_session,
        ok={204: None},
        errors=_ID_ROUTE_ERRORS,
        body=UpdateSession,
    ),
    Route(
        "DELETE",
        "/sessions/{session_id}/close",
        "cancel_session",
        "Cancel a session: queued jobs fail as cancelled, running ones finish (SPEC S13)",
        handlers.cancel_session,
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
        "/jobs/{job_id}/metrics",
        "get_job_metrics",
        "A job's metrics (SPEC U1): timestamps, usage, queue time, attempts",
        Api.job_metrics,
        ok={200: JobMetrics},
        errors=_ID_ROUTE_ERRORS,
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
        get_openapi,
        ok={200: RAW_JSON},
        public=True,
    ),
)


@functools.cache
def openapi_bytes() -> bytes:
    """``/openapi.json``, encoded once."""
    document = openapi_document(
        ROUTES,
        title="qmux",
        version=__version__,
        description=_DESCRIPTION,
        answer_headers={
            PENDING_JOBS_HEADER: "each backend's pending jobs, as a JSON object {name: count}; left out when it "
            "would be longer than 4 KiB"
        },
    )
    return msgspec.json.encode(document)
