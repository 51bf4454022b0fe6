"""IBM's route table: the part of the Runtime REST API that qiskit-ibm-runtime 0.51 calls, and IAM's token call."""

from __future__ import annotations

from typing import Final

from .._http import (
    ByName,
    Listing,
    OffsetListing,
    Route,
    SessionDocument,
    Totals,
    handlers,
    in_body,
    in_path,
    in_query,
    locate,
)
from ._api import IbmApi
from ._schemas import (
    JOBS_PAGE_MAX,
    BackendList,
    BackendQuery,
    CreateSession,
    InstanceUsage,
    JobCreated,
    JobDocument,
    JobList,
    JobQuery,
    JobsQuery,
    SubmitJob,
    TokenRequest,
    TokenResponse,
    UpdateSession,
    UpdateTags,
)
from ._workloads import WORKLOADS_PATH, WorkloadList, WorkloadsQuery, list_workloads, next_page

__all__ = ["API_PREFIX", "GLOBAL_CATALOG_PREFIX", "GLOBAL_SEARCH_PREFIX", "IAM_PATH", "ROUTES", "owns"]

#: where the Runtime API is mounted: the client's base URL must contain "experimental", or its
#: resolver replaces the host (IBM-RUNTIME-WIRE.md)
API_PREFIX: Final = "/experimental"
#: IBM Cloud IAM's token operation, at the server's root (the client's ``IAM_URL``)
IAM_PATH: Final = "/identity/token"
#: where IBM Cloud's instance look-up is served: Global Search and Global Catalog, under their
#: own prefixes (the client's ``GLOBAL_SEARCH_URL`` and ``GLOBAL_CATALOG_URL``)
CLOUD_PREFIX: Final = "/cloud"
GLOBAL_SEARCH_PREFIX: Final = f"{CLOUD_PREFIX}/global-search"
GLOBAL_CATALOG_PREFIX: Final = f"{CLOUD_PREFIX}/global-catalog"


def owns(path: str) -> bool:
    """Whether `path` is IBM's: the token operation, or under the API's or IBM Cloud's prefix."""
    return path in (IAM_PATH, API_PREFIX) or path.startswith((f"{API_PREFIX}/", f"{CLOUD_PREFIX}/"))


def _api(path: str) -> str:
    return f"{API_PREFIX}{path}"


_SESSION = locate(in_path("session_id"))
_JOB = locate(in_path("job_id"))
_BACKEND = locate(in_path("backend"))

ROUTES: Final[tuple[Route, ...]] = (
    Route(
        "POST",
        IAM_PATH,
        "iam_token",
        "Trade a tenant's token (IAM API key) for an access token",
        IbmApi.token,
        ok={200: TokenResponse},
        errors=(400,),
        body=TokenRequest,
        public=True,
    ),
    Route(
        "POST",
        f"{GLOBAL_SEARCH_PREFIX}/v3/resources/search",
        "ibm_cloud_search_instances",
        "IBM Cloud Global Search: the instances this token may use (this server's one)",
        IbmApi.search_instances,
        ok={200: None},
    ),
    Route(
        "GET",
        f"{GLOBAL_CATALOG_PREFIX}/{{plan_id}}",
        "ibm_cloud_catalog_entry",
        "IBM Cloud Global Catalog: an instance's plan",
        IbmApi.catalog_entry,
        ok={200: None},
        errors=(404,),
    ),
    Route(
        "GET",
        _api("/backends"),
        "ibm_list_backends",
        "List the backends",
        IbmApi.list_backends,
        ok={200: BackendList},
        locate=locate(merge=ByName("devices")),
    ),
    Route(
        "GET",
        _api("/backends/{backend}/configuration"),
        "ibm_backend_configuration",
        "A backend's configuration",
        IbmApi.backend_configuration,
        ok={200: None},
        errors=(404,),
        query=BackendQuery,
        locate=_BACKEND,
    ),
    Route(
        "GET",
        _api("/backends/{backend}/properties"),
        "ibm_backend_properties",
        "A backend's calibration: qubits' T1, T2 and readout errors, gates' errors and durations",
        IbmApi.backend_properties,
        ok={200: None},
        errors=(404,),
        query=BackendQuery,
        locate=_BACKEND,
    ),
    Route(
        "GET",
        _api("/backends/{backend}/status"),
        "ibm_backend_status",
        "A backend's status",
        handlers.backend_status,
        ok={200: None},
        errors=(404,),
        locate=_BACKEND,
    ),
    Route(
        "GET",
        _api("/instances/usage"),
        "ibm_usage",
        "The tenant's usage: the quantum seconds of its jobs (SPEC U1); no limits",
        IbmApi.usage,
        ok={200: InstanceUsage},
        locate=locate(merge=Totals()),
    ),
    Route(
        "POST",
        _api("/sessions"),
        "ibm_create_session",
        "Open a session or batch (SPEC S1, S4)",
        IbmApi.create_session,
        ok={200: SessionDocument},
        errors=(404, 409, 422),
        body=CreateSession,
        locate=locate(in_body("backend")),
    ),
    Route(
        "GET",
        _api("/sessions/{session_id}"),
        "ibm_get_session",
        "A session's details (SPEC S17, S18)",
        handlers.get_session,
        ok={200: SessionDocument},
        errors=(404,),
        locate=_SESSION,
    ),
    Route(
        "PATCH",
        _api("/sessions/{session_id}"),
        "ibm_close_session",
        "Close a session (SPEC S12)",
        handlers.close_session,
        ok={204: None},
        errors=(404, 422),
        body=UpdateSession,
        locate=_SESSION,
    ),
    Route(
        "DELETE",
        _api("/sessions/{session_id}/close"),
        "ibm_cancel_session",
        "Cancel a session (SPEC S13)",
        handlers.cancel_session,
        ok={204: None},
        errors=(404,),
        locate=_SESSION,
    ),
    Route(
        "POST",
        _api("/jobs"),
        "ibm_submit_job",
        "Submit a job to a session or a backend",
        IbmApi.submit_job,
        ok={200: JobCreated},
        errors=(409, 422),
        body=SubmitJob,
        locate=locate(in_body("session_id"), in_body("backend")),
    ),
    Route(
        "GET",
        _api("/jobs"),
        "ibm_list_jobs",
        "The tenant's jobs by creation, newest first unless sort=ASC, from offset (SPEC V1)",
        IbmApi.list_jobs,
        ok={200: JobList},
        query=JobsQuery,
        description="`count` is how many match. In a cluster every node's jobs, merged: each node is asked for "
        f"its first offset+limit, {JOBS_PAGE_MAX} at a time, so a page's cost grows with its offset.",
        locate=locate(
            in_query("session_id"),
            in_query("backend"),
            merge=OffsetListing("jobs", created=("created",), sort=("sort", "DESC"), most=JOBS_PAGE_MAX),
        ),
    ),
    Route(
        "GET",
        _api("/jobs/{job_id}"),
        "ibm_get_job",
        "A job's state (polled every 0.1 s per session job), and its params unless excluded",
        IbmApi.get_job,
        ok={200: JobDocument},
        errors=(404,),
        query=JobQuery,
        quiet=True,
        locate=_JOB,
    ),
    Route(
        "DELETE",
        _api("/jobs/{job_id}"),
        "ibm_delete_job",
        "Delete a job, cancelling it if it has not ended (SPEC J2)",
        IbmApi.delete_job,
        ok={204: None},
        errors=(404,),
        locate=_JOB,
    ),
    Route(
        "GET",
        _api("/jobs/{job_id}/metrics"),
        "ibm_job_metrics",
        "A job's timestamps and usage (SPEC U1)",
        IbmApi.job_metrics,
        ok={200: None},
        errors=(404,),
        locate=_JOB,
    ),
    Route(
        "PUT",
        _api("/jobs/{job_id}/tags"),
        "ibm_update_job_tags",
        "Replace a job's tags",
        IbmApi.update_tags,
        ok={204: None},
        errors=(404, 422),
        body=UpdateTags,
        locate=_JOB,
    ),
    Route(
        "GET",
        _api("/jobs/{job_id}/results"),
        "ibm_job_results",
        "A job's result, or its error as text",
        IbmApi.job_results,
        ok={200: None},
        errors=(404, 409),
        locate=_JOB,
    ),
    Route(
        "POST",
        _api("/jobs/{job_id}/cancel"),
        "ibm_cancel_job",
        "Cancel a job (SPEC J2, S14)",
        IbmApi.cancel_job,
        ok={204: None},
        errors=(404, 409),
        locate=_JOB,
    ),
    Route(
        "GET",
        _api("/jobs/{job_id}/logs"),
        "ibm_job_logs",
        "A job's logs (none)",
        IbmApi.job_logs,
        ok={200: None},
        locate=_JOB,
    ),
    Route(
        "GET",
        _api(WORKLOADS_PATH),
        "ibm_list_workloads",
        "The tenant's sessions, batches and job-mode jobs, newest first (SPEC V1)",
        list_workloads,
        ok={200: WorkloadList},
        query=WorkloadsQuery,
        locate=locate(
            in_query("backend"),
            merge=Listing(
                "workloads",
                created=("created",),
                sort=("sort", "-createdAt"),
                counts=("total_count",),
                write_next=next_page,
            ),
        ),
    ),
)
