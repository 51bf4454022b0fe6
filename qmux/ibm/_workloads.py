"""IBM's ``GET /workloads``: a tenant's sessions, batches and job-mode jobs in one listing (SPEC V1).

IBM's Runtime API lists a user's *workloads*, newest first by default: each session and batch is
one, each job outside a session is one (a session's jobs are in it). qiskit-ibm-runtime 0.51 has
the call in its REST layer (``workloads_get``) though no public method uses it yet; this is its
shape: ``{"workloads": [...], "total_count", "limit", "next": {"href"}}``, with IBM's filters
(``backend``, ``status`` repeated, ``mode``, ``created_after``, ``created_before``, ``tags``
repeated, ``search`` in ids and tags, ``sort``) and a ``next`` cursor. A page is cut from the
whole matching list, so its cost grows with what the tenant has (bounded by retention); the
cursor is the (created, id) key of the page's last item, as on the native API, so pages neither
skip nor repeat. ``previous`` is not served: a client walks forward. In a cluster each node lists
the workloads it holds and the route merges their pages by that key (`qmux._http.Listing`,
writing its cursor with `next_page`), ``total_count`` summed.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Annotated, Any, Final, Literal

import msgspec
from attrs import frozen

from .._core import Job, JobError, JobStatus, Session
from .._http import Key, Reply, Request, decode_cursor, encode_cursor, parse_instant
from ._api import IbmApi

__all__ = ["WORKLOADS_PATH", "Workload", "WorkloadList", "WorkloadsQuery", "list_workloads", "next_page"]

WORKLOADS_PATH: Final = "/workloads"

Status = Literal["pending", "in_progress", "completed", "canceled", "failed"]
_JOB_STATUS: Final[dict[JobStatus, Status]] = {
    JobStatus.QUEUED: "pending",
    JobStatus.RUNNING: "in_progress",
    JobStatus.DONE: "completed",
    JobStatus.ERROR: "failed",
    JobStatus.CANCELLED: "canceled",
}
_SESSION_STATUS: Final[dict[str, Status]] = {
    "open": "pending",
    "active": "in_progress",
    "inactive": "in_progress",
    "closed": "completed",
}
#: the closed reasons that read as a failed or cancelled workload rather than a completed one
_CLOSED_AS: Final[dict[str, Status]] = {
    "cancelled": "canceled",
    "root_job_cancelled": "canceled",
    "crashed": "failed",
    "job_failed": "failed",
}


class WorkloadsQuery(msgspec.Struct, kw_only=True):
    """IBM's filters; unknown ones are ignored, as everywhere on this front door."""

    limit: Annotated[int, msgspec.Meta(ge=1, le=50)] = 10
    next: str | None = None
    previous: str | None = None
    backend: str | None = None
    search: str | None = None
    status: list[Status] = msgspec.field(default_factory=list)
    mode: Literal["job", "session", "batch"] | None = None
    created_after: str | None = None
    created_before: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    sort: Literal["createdAt", "-createdAt"] = "-createdAt"
    user: str | None = None
    include_mocks: bool | None = None


class Usage(msgspec.Struct, kw_only=True):
    qpu_charge_time_seconds: float
    #: a job's: "complete" once it has ended, "pending" before
    status: Literal["pending", "complete"] | None = None


class Cursor(msgspec.Struct, kw_only=True):
    href: str


class Workload(msgspec.Struct, kw_only=True):
    id: str
    created: str
    ended: str | None = None
    backend: str
    instance: str = "qmux"
    user_id: str
    #: a session's or batch's; null for a job
    accepting_jobs: bool | None = None
    mode: Literal["job", "session", "batch"]
    status: Status
    status_reason: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    usage: Usage | None = None


class WorkloadList(msgspec.Struct, kw_only=True, omit_defaults=True):
    workloads: list[Workload]
    total_count: int
    limit: int
    next: Cursor | None = None


@frozen
class _Entry:
    key: Key
    workload: Workload


async def list_workloads(api: IbmApi, request: Request) -> Reply:
    """A page of the tenant's workloads, with the cursor of the next."""
    query: WorkloadsQuery = request.query
    window = {
        "created_after": parse_instant(query.created_after, "created_after"),
        "created_before": parse_instant(query.created_before, "created_before"),
    }
    entries: list[_Entry] = []
    if query.mode in (None, "session", "batch") and not query.tags:
        async for session in api.view.sessions(request.tenant, backend=query.backend, **window):
            entries.append(await _session_entry(session, request.tenant))
    if query.mode in (None, "job"):
        async for job in api.view.jobs(request.tenant, backend=query.backend, tags=tuple(query.tags), **window):
            if job.session_id is None:
                entries.append(await _job_entry(job, request.tenant))
    matching = [entry for entry in entries if _matches(entry.workload, query)]
    newest_first = query.sort == "-createdAt"
    matching.sort(key=lambda entry: entry.key, reverse=newest_first)
    start = decode_cursor(query.next)
    rest = matching if start is None else [e for e in matching if (e.key < start if newest_first else e.key > start)]
    page = rest[: query.limit]
    cursor = next_page(query, encode_cursor(page[-1].key)) if len(rest) > query.limit else None
    listed = WorkloadList(
        workloads=[e.workload for e in page], total_count=len(matching), limit=query.limit, next=cursor
    )
    return Reply.json(200, listed)


def next_page(query: WorkloadsQuery, cursor: str) -> Cursor:
    """A page's ``next``: the same request, from after the workload whose key `cursor` is."""
    return Cursor(href="?" + urllib.parse.urlencode(_filters(query, next=cursor), doseq=True))


def _filters(query: WorkloadsQuery, **more: str) -> dict[str, Any]:
    given = {name: value for name, value in msgspec.structs.asdict(query).items() if value not in (None, [])}
    return {**{k: v for k, v in given.items() if k not in ("next", "previous")}, **more}


def _matches(workload: Workload, query: WorkloadsQuery) -> bool:
    if query.mode is not None and workload.mode != query.mode:
        return False
    if query.status and workload.status not in query.status:
        return False
    if query.search:
        return query.search in workload.id or any(query.search in tag for tag in workload.tags)
    return True


async def _session_entry(session: Session, tenant: str) -> _Entry:
    details = await session.details()
    opened = details["timestamps"][0]["timestamp"]
    status = _SESSION_STATUS[details["state"]]
    if status == "completed":
        status = _CLOSED_AS.get(details["closed_reason"] or "", status)
    workload = Workload(
        id=session.session_id,
        created=opened,
        ended=details["closed_at"],
        backend=session.backend_name,
        user_id=tenant,
        accepting_jobs=details["accepting_jobs"],
        mode="batch" if details["mode"] == "batch" else "session",
        status=status,
        usage=Usage(qpu_charge_time_seconds=details["usage_time"]),
    )
    return _Entry((dt.datetime.fromisoformat(opened), session.session_id), workload)


async def _job_entry(job: Job, tenant: str) -> _Entry:
    metrics: dict[str, Any] = await job.metrics()
    created = metrics["timestamps"]["created"]
    status = JobStatus(await job.status())
    reason = None
    if status in (JobStatus.ERROR, JobStatus.CANCELLED):
        try:
            await job.result()
        except JobError as error:  # ended: its error comes at once, and its message is the reason
            reason = str(error)
    workload = Workload(
        id=job.job_id,
        created=created,
        ended=metrics["timestamps"]["finished"],
        backend=job.backend_name,
        user_id=tenant,
        mode="job",
        status=_JOB_STATUS[status],
        status_reason=reason,
        tags=await job.tags(),
        usage=Usage(
            qpu_charge_time_seconds=metrics["usage"]["quantum_seconds"],
            status="complete" if status.is_final else "pending",
        ),
    )
    return _Entry((dt.datetime.fromisoformat(created), job.job_id), workload)
