"""The native API's route table: dispatch and ``/openapi.json`` both read it."""

from __future__ import annotations

import functools
from typing import Final

import msgspec

from .._http import (
    KEEPALIVE_SECONDS,
    RAW_JSON,
    BackendStatus,
    ByName,
    EventDocument,
    EventStream,
    Listing,
    MergedEvents,
    Reply,
    Request,
    Route,
    SessionDocument,
    Totals,
    handlers,
    in_body,
    in_path,
    in_query,
    locate,
    openapi_document,
)
from .._version import __version__
from ._api import PENDING_JOBS_HEADER, Api
from ._operators import OPS_ROUTES
from ._schemas import (
    BackendList,
    CreateSession,
    EventsQuery,
    JobDocument,
    JobList,
    JobMetrics,
    JobQuery,
    JobsQuery,
    QueueInfo,
    QueuePosition,
    ResultsQuery,
    SessionList,
    SessionsQuery,
    SubmitJob,
    Tags,
    UpdateSession,
    UsageDocument,
    UsageQuery,
)

__all__ = ["ROUTES", "openapi_bytes"]

_ID_ROUTE_ERRORS = (404,)
#: in a cluster, answered by the node that holds the session, the job, the backend the path names
_SESSION = locate(in_path("session_id"))
_JOB = locate(in_path("job_id"))
_BACKEND = locate(in_path("backend"))
_DESCRIPTION: Final = (
    "A session multiplexer for scarce backends, modelled on IBM Quantum's Runtime API. Every request "
    "but this document's and the health probes' carries `Authorization: Bearer <token>`; a tenant sees only "
    "its own sessions and jobs (another tenant's id answers 404). `/metrics` takes the metrics token."
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
        locate=locate(merge=ByName("devices")),
    ),
    Route(
        "GET",
        "/backends/{backend}/status",
        "get_backend_status",
        "One backend's status (IBM's shape)",
        handlers.backend_status,
        ok={200: BackendStatus},
        errors=(404,),
        locate=_BACKEND,
    ),
    Route(
        "GET",
        "/backends/{backend}/queue",
        "get_backend_queue",
        "A backend's queue: jobs of active sessions and batches, and jobs in the line (SPEC Q1)",
        Api.backend_queue,
        ok={200: QueueInfo},
        errors=(404,),
        locate=_BACKEND,
    ),
    Route(
        "GET",
        "/sessions",
        "list_sessions",
        "The tenant's sessions, newest first, a page at a time (SPEC V1)",
        Api.list_sessions,
        ok={200: SessionList},
        query=SessionsQuery,
        description="Closed sessions stay listed until retention drops them. `next` is the cursor of the next "
        "page (null after the last): pass it as `cursor` with the same filters.",
        locate=locate(in_query("backend"), merge=Listing("sessions", created=("timestamps", 0, "timestamp"))),
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
        locate=locate(in_body("backend")),
    ),
    Route(
        "GET",
        "/sessions/{session_id}",
        "get_session",
        "A session's details (SPEC S18, IBM's field names)",
        handlers.get_session,
        ok={200: SessionDocument},
        errors=_ID_ROUTE_ERRORS,
        locate=_SESSION,
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
        locate=_SESSION,
    ),
    Route(
        "DELETE",
        "/sessions/{session_id}/close",
        "cancel_session",
        "Cancel a session: queued jobs fail as cancelled, running ones finish (SPEC S13)",
        handlers.cancel_session,
        ok={204: None},
        errors=_ID_ROUTE_ERRORS,
        locate=_SESSION,
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
        locate=locate(in_body("session_id"), in_body("backend")),
    ),
    Route(
        "GET",
        "/jobs",
        "list_jobs",
        "The tenant's jobs, newest first, a page at a time (SPEC V1, T1)",
        Api.list_jobs,
        ok={200: JobList},
        query=JobsQuery,
        description="`tags` may repeat: a job is listed if it has all of them. `next` is the cursor of the next "
        "page (null after the last): pass it as `cursor` with the same filters.",
        locate=locate(in_query("session_id"), in_query("backend"), merge=Listing("jobs", created=("created",))),
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
        locate=_JOB,
    ),
    Route(
        "GET",
        "/jobs/{job_id}/metrics",
        "get_job_metrics",
        "A job's metrics (SPEC U1): timestamps, usage, queue time, attempts",
        Api.job_metrics,
        ok={200: JobMetrics},
        errors=_ID_ROUTE_ERRORS,
        locate=_JOB,
    ),
    Route(
        "GET",
        "/jobs/{job_id}/queue",
        "get_job_queue_position",
        "How many jobs start before this one on its backend (SPEC Q1)",
        Api.job_queue,
        ok={200: QueuePosition},
        errors=_ID_ROUTE_ERRORS,
        locate=_JOB,
    ),
    Route(
        "PUT",
        "/jobs/{job_id}/tags",
        "update_job_tags",
        "Replace a job's tags (SPEC T1)",
        Api.update_tags,
        ok={204: None},
        errors=_ID_ROUTE_ERRORS,
        body=Tags,
        locate=_JOB,
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
        locate=_JOB,
    ),
    Route(
        "POST",
        "/jobs/{job_id}/cancel",
        "cancel_job",
        "Cancel a job (SPEC J2); harmless once it has ended (S16)",
        Api.cancel_job,
        ok={204: None},
        errors=_ID_ROUTE_ERRORS,
        locate=_JOB,
    ),
    Route(
        "GET",
        "/events",
        "get_events",
        "The tenant's events as Server-Sent Events: one session's, one job's, or all (SPEC E1)",
        Api.events,
        ok={200: EventStream(EventDocument)},
        errors=(404,),
        query=EventsQuery,
        description="With `session_id` or `job_id`, the stream starts with its state now and ends once the "
        "session has closed and its jobs have ended, or the job has ended; without, it carries every event of "
        "the tenant's (of `backend`) until the server shuts down. Each event's `id` is its seq: send the last "
        "one seen as the `Last-Event-ID` header to resume after it (a `lagged` event says how many are gone). "
        f"A comment line goes out every {KEEPALIVE_SECONDS:g} s. Each stream holds one of the tenant's event "
        "subscriptions (`max_subscribers_per_owner`; more answer 429).",
        locate=locate(in_query("session_id"), in_query("job_id"), in_query("backend"), merge=MergedEvents()),
    ),
    Route(
        "GET",
        "/usage",
        "get_usage",
        "The tenant's usage per backend over a time window (SPEC U1)",
        Api.usage,
        ok={200: UsageDocument},
        query=UsageQuery,
        locate=locate(merge=Totals("backends")),
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
    """``/openapi.json``, encoded once: the native API's routes and the operators' (``_operators``)."""
    document = openapi_document(
        ROUTES + OPS_ROUTES,
        title="qmux",
        version=__version__,
        description=_DESCRIPTION,
        answer_headers={
            PENDING_JOBS_HEADER: "each backend's pending jobs, as a JSON object {name: count}; left out when it "
            "would be longer than 4 KiB"
        },
    )
    return msgspec.json.encode(document)
