"""IBM's Runtime REST API over a `qmux.Service`: one handler per route, and the route table.

Like the native API's handlers, these re-implement no session rule. Sessions are opened with
``service.open_session_port``, jobs go through ``session.run`` or ``backend.run``, and
statuses, details and errors come from the core's `Job` and `Session` handles: the behaviour
the client sees is the one the core suite tests. What this module adds is translation: IBM's
paths and field names, its job states (``Completed``, ``Failed`` with a reason, ...), its
encodings (see `_codec`), and its few status-code conventions that change what the client
does (a 404 on ``POST /jobs`` reads as "program not found"; a 409 on cancel reads as "job
cannot be cancelled").

Tenancy: the API key is a tenant's token (see `_auth`). Sessions and job-mode jobs are opened
with the tenant as their core ``owner`` tag (jobs in a session inherit it), which is what this
API checks, and which the journal keeps across a restart. The native API checks the same tag,
so a tenant sees the same sessions and jobs through ``qmux.connect``; another tenant's ids
answer 404 on both, exactly as ids that never existed.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Final, final

import msgspec
import structlog
import trio
from attrs import frozen

from .._core import (
    BackendNotFoundError,
    InvalidInputError,
    Job,
    JobError,
    JobNotFoundError,
    JobStatus,
    QmuxError,
    Service,
    Session,
    SessionNotFoundError,
    wall_now,
)
from ..server._api import Api, session_document
from ..server._http import HttpError, Reply, Request, Route
from ..server._schemas import SessionDocument
from . import _backends, _codec
from ._auth import APIKEY_GRANT, IamTokens
from ._schemas import (
    ERROR_CODES,
    JOB_STATES,
    BackendList,
    CreateSession,
    IamError,
    JobCreated,
    JobDocument,
    JobList,
    JobProgram,
    JobsQuery,
    JobState,
    SubmitJob,
    TokenRequest,
    TokenResponse,
    UpdateSession,
)

__all__ = ["API_PREFIX", "IAM_PATH", "ROUTES", "IbmApi", "JobEntry", "JobIndex"]

_log = structlog.get_logger("qmux.ibm")

#: where the Runtime API is mounted: the client's base URL must contain "experimental", or its
#: resolver replaces the host (IBM-RUNTIME-WIRE.md)
API_PREFIX: Final = "/experimental"
#: IBM Cloud IAM's token operation, at the server's root (the client's ``IAM_URL``)
IAM_PATH: Final = "/identity/token"


@frozen
class JobEntry:
    """What this front door remembers of a job it took: whose it is and when it came."""

    tenant: str
    session_id: str | None
    backend: str
    program_id: str
    created: dt.datetime
    tags: tuple[str, ...]
    #: the submission order (wall-clock times may tie or step back)
    seq: int

    @property
    def created_iso(self) -> str:
        return self.created.isoformat(timespec="microseconds").replace("+00:00", "Z")


@final
class JobIndex:
    """The jobs submitted through IBM's API, for ``GET /jobs`` and each job's ``created``.

    Bounded like the core's memory: past `limit`, entries whose job the core has forgotten
    are dropped, oldest first, with a rotating scan (an entry the
    core still knows goes to the back, so a long-lived job never hides forgotten ones). The
    scan reorders the map, so listings order by `JobEntry.seq`, the submission order.
    """

    __slots__ = ("_entries", "_limit", "_seq")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._entries: OrderedDict[str, JobEntry] = OrderedDict()
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, job_id: str) -> JobEntry | None:
        return self._entries.get(job_id)

    def in_order(self, *, newest_first: bool) -> list[tuple[str, JobEntry]]:
        return sorted(self._entries.items(), key=lambda item: item[1].seq, reverse=newest_first)

    def next_seq(self) -> int:
        return next(self._seq)

    async def add(self, job_id: str, entry: JobEntry, exists: Callable[[str], Awaitable[bool]]) -> None:
        entries = self._entries
        entries[job_id] = entry
        excess = len(entries) - self._limit
        for _ in range(min(len(entries), 2 * excess)):
            if excess <= 0:
                break
            oldest = next(iter(entries))
            alive = await exists(oldest)
            if oldest not in entries:
                continue
            if alive:
                entries.move_to_end(oldest)
            else:
                del entries[oldest]
                excess -= 1


@final
class IbmApi:
    """The handlers, over one service and beside the native API, whose tenancy they share."""

    def __init__(self, service: Service, native: Api, tokens: IamTokens) -> None:
        self.service = service
        self.native = native
        self.tokens = tokens
        self.jobs = JobIndex(limit=2 * service.settings.retain_finished)
        self.online_date = wall_now().isoformat(timespec="seconds").replace("+00:00", "Z")
        self._configurations: dict[str, bytes] = {}

    # -- IAM ---------------------------------------------------------------------------------

    async def token(self, request: Request) -> Reply:
        body: TokenRequest = request.body
        if body.grant_type != APIKEY_GRANT:
            return Reply.json(
                400, IamError(error_code="BXNIM0103E", error_message=f"grant_type must be {APIKEY_GRANT!r}")
            )
        issued = self.tokens.issue(body.apikey)
        if issued is None:
            _log.info("ibm.token_refused")
            return Reply.json(
                400,
                IamError(
                    error_code="BXNIM0415E",
                    error_message="the API key is not the token of any tenant of this qmux server",
                ),
            )
        return Reply.json(
            200,
            TokenResponse(
                access_token=issued.token,
                refresh_token="not_supported",
                token_type="Bearer",
                expires_in=issued.expires_at - issued.issued_at,
                expiration=issued.expires_at,
                scope="ibm openid",
            ),
        )

    # -- backends ----------------------------------------------------------------------------

    async def list_backends(self, request: Request) -> Reply:
        return Reply.json(200, BackendList(devices=[_backends.device(handle) for handle in self.service.backends()]))

    async def backend_configuration(self, request: Request) -> Reply:
        name = request.params["backend"]
        body = self._configurations.get(name)
        if body is None:  # static for the server's life, and large (all-to-all pairs): encoded once
            handle = self.service.backend(name)
            document = _backends.configuration(handle, version=_version(), online_date=self.online_date)
            body = self._configurations[name] = msgspec.json.encode(document)
        return Reply(200, body, {"content-type": "application/json"})

    async def backend_properties(self, request: Request) -> Reply:
        self.service.backend(request.params["backend"])  # 404 for an unknown name
        return Reply.json(200, {})  # no calibration data: the client then has none, as for a simulator

    async def backend_status(self, request: Request) -> Reply:
        handle = self.service.backend(request.params["backend"])
        return Reply.json(200, _backends.status(handle, version=_version()))

    async def usage(self, request: Request) -> Reply:
        return Reply.json(200, {})  # no usage limits: the client reads "usage_limit_reached" as absent

    # -- sessions ----------------------------------------------------------------------------

    async def create_session(self, request: Request) -> Reply:
        body: CreateSession = request.body
        self._refuse_new_work()
        port = self.service.open_session_port(body.backend, max_time=body.max_ttl, mode=body.mode, owner=request.tenant)
        _log.info("ibm.session_opened", session_id=port.session_id, tenant=request.tenant, backend=body.backend)
        return Reply.json(200, session_document(await port.details()))

    # The session routes have the same shapes on both APIs: the native handlers serve them.

    async def get_session(self, request: Request) -> Reply:
        return await self.native.get_session(request)

    async def close_session(self, request: Request) -> Reply:
        return await self.native.update_session(request)

    async def cancel_session(self, request: Request) -> Reply:
        return await self.native.cancel_session(request)

    # -- jobs --------------------------------------------------------------------------------

    async def submit_job(self, request: Request) -> Reply:
        body: SubmitJob = request.body
        self._refuse_new_work()
        if body.start_session:
            raise InvalidInputError(
                "start_session is IBM's legacy way to open a session with a job; open one with Session(backend) "
                "(POST /sessions) and submit to it"
            )
        inputs = _codec.decode_params(body.params, max_blob_bytes=self.native.settings.max_blob_bytes)
        try:
            job = await self._run(request.tenant, body, inputs)
        except (SessionNotFoundError, BackendNotFoundError) as exc:
            # not a 404: on this route the client reads 404 as "program not found"
            raise InvalidInputError(str(exc)) from exc
        entry = JobEntry(
            request.tenant,
            job.session_id,
            job.backend_name,
            job.program_id,
            wall_now(),
            tuple(body.tags),
            self.jobs.next_seq(),
        )
        await self.jobs.add(job.job_id, entry, self._job_exists)
        _log.info("ibm.job_submitted", job_id=job.job_id, session_id=job.session_id, program_id=job.program_id)
        return Reply.json(200, JobCreated(id=job.job_id, backend=job.backend_name, session_id=job.session_id))

    async def _run(self, tenant: str, body: SubmitJob, inputs: object) -> Job:
        if body.session_id is not None:
            session = await self._session(tenant, body.session_id)
            if body.backend is not None and body.backend != session.backend_name:
                raise InvalidInputError(
                    f"backend={body.backend!r} but session {body.session_id} runs on {session.backend_name!r}"
                )
            return await session.run(body.program_id, inputs)  # refused with 409 once it stopped accepting
        if body.backend is None:
            raise InvalidInputError("a job needs a session_id, or a backend to run on in job mode")
        return Job(await self.service.submit_job(body.backend, body.program_id, inputs, owner=tenant))

    async def get_job(self, request: Request) -> Reply:
        """The job's state: a few dictionary lookups, since the client polls it every 0.1 s."""
        job = await self._job(request.tenant, request.params["job_id"])
        return Reply.json(200, await self.job_document(job))

    async def list_jobs(self, request: Request) -> Reply:
        query: JobsQuery = request.query
        after = _instant(query.created_after, "created_after")
        before = _instant(query.created_before, "created_before")
        wanted_tags = set(query.tags)
        matching: list[Job] = []
        for job_id, entry in self.jobs.in_order(newest_first=query.sort == "DESC"):
            if (
                entry.tenant != request.tenant
                or (query.session_id is not None and entry.session_id != query.session_id)
                or (query.backend is not None and entry.backend != query.backend)
                or (query.program is not None and entry.program_id != query.program)
                or not wanted_tags <= set(entry.tags)
                or (after is not None and entry.created < after)
                or (before is not None and entry.created > before)
            ):
                continue
            try:
                job = await self.service.job(job_id)
            except JobNotFoundError:
                continue  # the core has forgotten it
            if query.pending is not None and query.pending == JobStatus(await job.status()).is_final:
                continue
            matching.append(job)
        page = matching[query.offset : query.offset + query.limit]
        documents = [await self.job_document(job) for job in page]
        return Reply.json(200, JobList(jobs=documents, count=len(matching), limit=query.limit, offset=query.offset))

    async def job_results(self, request: Request) -> Reply:
        """A finished job's result in ``RuntimeEncoder`` JSON; a failed one's error as text.

        The client reads the text of a failed job's results as its error message, so that
        answer is a 200 too; a job that has not ended yet is a 409.
        """
        job = await self._job(request.tenant, request.params["job_id"])
        status = JobStatus(await job.status())
        if not status.is_final:
            raise HttpError(
                409,
                QmuxError(f"job {job.job_id} is {status.value.lower()}; its result exists once it has ended"),
                code="job_not_finished",
            )
        try:
            value = await job.result()
        except JobError as error:
            return Reply(200, str(error).encode("utf-8"), {"content-type": "text/plain; charset=utf-8"})
        body = await trio.to_thread.run_sync(_codec.encode_result, value)
        return Reply(200, body, {"content-type": "application/json"})

    async def cancel_job(self, request: Request) -> Reply:
        """Cancel a queued or running job (SPEC J2); the root job's cancel fails its session (S14).

        A job that has already ended answers 409, as IBM's API does: the client then raises
        ``RuntimeInvalidStateError`` rather than marking a finished job cancelled on its side.
        Nothing changes on the server either way (S16).
        """
        job = await self._job(request.tenant, request.params["job_id"])
        status = JobStatus(await job.status())
        if status.is_final:
            raise HttpError(
                409,
                QmuxError(f"job {job.job_id} has already ended ({JOB_STATES[status.value]}); it cannot be cancelled"),
                code="job_not_cancellable",
            )
        await job.cancel()
        return Reply.empty()

    async def job_logs(self, request: Request) -> Reply:
        await self._job(request.tenant, request.params["job_id"])
        return Reply(200, b"", {"content-type": "text/plain; charset=utf-8"})  # simulated QPUs write no logs

    # -- helpers -----------------------------------------------------------------------------

    async def job_document(self, job: Job) -> JobDocument:
        """A job as ``GET /jobs/{id}`` shows it; a failed or cancelled job's reason is its error's message."""
        status = JobStatus(await job.status())
        reason: str | None = None
        code: int | None = None
        if status in (JobStatus.ERROR, JobStatus.CANCELLED):
            try:
                await job.result()  # ended: returns or raises at once
            except JobError as error:
                reason = str(error)
                code = ERROR_CODES.get(error.reason or "")
        entry = self.jobs.get(job.job_id)
        return JobDocument(
            id=job.job_id,
            backend=job.backend_name,
            state=JobState(status=JOB_STATES[status.value], reason=reason, reason_code=code),
            program=JobProgram(id=job.program_id),
            session_id=job.session_id,
            created=entry.created_iso if entry is not None else None,
            tags=list(entry.tags) if entry is not None else [],
        )

    def _refuse_new_work(self) -> None:
        self.native._refuse_new_work()

    async def _session(self, tenant: str, session_id: str) -> Session:
        """The tenant's session (its owner tag says so), else the 404 of an unknown id."""
        return await self.native._session(tenant, session_id)

    async def _job(self, tenant: str, job_id: str) -> Job:
        return await self.native._job(tenant, job_id)

    async def _session_exists(self, session_id: str) -> bool:
        try:
            await self.service.session(session_id)
        except SessionNotFoundError:
            return False
        return True

    async def _job_exists(self, job_id: str) -> bool:
        try:
            await self.service.job(job_id)
        except JobNotFoundError:
            return False
        return True


def _instant(text: str | None, name: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        instant = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"{name}={text!r} is not an ISO-8601 date and time") from None
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=dt.UTC)


def _version() -> str:
    from .._version import __version__

    return __version__


# -- the route table ---------------------------------------------------------------------------------


def _api(path: str) -> str:
    return f"{API_PREFIX}{path}"


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
        "GET", _api("/backends"), "ibm_list_backends", "List the backends", IbmApi.list_backends, ok={200: BackendList}
    ),
    Route(
        "GET",
        _api("/backends/{backend}/configuration"),
        "ibm_backend_configuration",
        "A backend's configuration",
        IbmApi.backend_configuration,
        ok={200: None},
        errors=(404,),
    ),
    Route(
        "GET",
        _api("/backends/{backend}/properties"),
        "ibm_backend_properties",
        "A backend's calibration properties (none)",
        IbmApi.backend_properties,
        ok={200: None},
        errors=(404,),
    ),
    Route(
        "GET",
        _api("/backends/{backend}/status"),
        "ibm_backend_status",
        "A backend's status",
        IbmApi.backend_status,
        ok={200: None},
        errors=(404,),
    ),
    Route("GET", _api("/instances/usage"), "ibm_usage", "Usage (no limits)", IbmApi.usage, ok={200: None}),
    Route(
        "POST",
        _api("/sessions"),
        "ibm_create_session",
        "Open a session or batch (SPEC S1, S4)",
        IbmApi.create_session,
        ok={200: SessionDocument},
        errors=(404, 409, 422),
        body=CreateSession,
    ),
    Route(
        "GET",
        _api("/sessions/{session_id}"),
        "ibm_get_session",
        "A session's details (SPEC S17, S18)",
        IbmApi.get_session,
        ok={200: SessionDocument},
        errors=(404,),
    ),
    Route(
        "PATCH",
        _api("/sessions/{session_id}"),
        "ibm_close_session",
        "Close a session (SPEC S12)",
        IbmApi.close_session,
        ok={204: None},
        errors=(404, 422),
        body=UpdateSession,
    ),
    Route(
        "DELETE",
        _api("/sessions/{session_id}/close"),
        "ibm_cancel_session",
        "Cancel a session (SPEC S13)",
        IbmApi.cancel_session,
        ok={204: None},
        errors=(404,),
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
    ),
    Route(
        "GET",
        _api("/jobs"),
        "ibm_list_jobs",
        "List the tenant's jobs",
        IbmApi.list_jobs,
        ok={200: JobList},
        query=JobsQuery,
    ),
    Route(
        "GET",
        _api("/jobs/{job_id}"),
        "ibm_get_job",
        "A job's state (polled every 0.1 s per session job)",
        IbmApi.get_job,
        ok={200: JobDocument},
        errors=(404,),
    ),
    Route(
        "GET",
        _api("/jobs/{job_id}/results"),
        "ibm_job_results",
        "A job's result, or its error as text",
        IbmApi.job_results,
        ok={200: None},
        errors=(404, 409),
    ),
    Route(
        "POST",
        _api("/jobs/{job_id}/cancel"),
        "ibm_cancel_job",
        "Cancel a job (SPEC J2, S14)",
        IbmApi.cancel_job,
        ok={204: None},
        errors=(404, 409),
    ),
    Route("GET", _api("/jobs/{job_id}/logs"), "ibm_job_logs", "A job's logs (none)", IbmApi.job_logs, ok={200: None}),
)
