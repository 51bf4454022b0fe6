"""IBM's Runtime REST API over a `qmux.Service`: the handlers only this front door has.

Like the native API's handlers, these re-implement no session rule. They reach the service
through the same `qmux._http.ServiceView` as the native API (tenancy, the shutdown gate, opening
sessions, placing and submitting jobs), and the operations both APIs serve alike (read, close and
cancel a session, a backend's status) are `qmux._http.handlers`. What this module adds is
translation: IBM's job documents (``Completed``, ``Failed`` with a reason and a reason code),
its job listing, its encodings (see `_codec`), IAM's token call, and the few status-code
conventions that change what the client does (a 404 on ``POST /jobs`` reads as "program not
found"; a 409 on cancel reads as "job cannot be cancelled").

Tenancy: the API key is a tenant's token (see `_auth`). Sessions and job-mode jobs are opened
with the tenant as their core ``owner`` tag (jobs in a session inherit it), which the view
checks on both APIs: a tenant sees the same sessions and jobs through ``qmux.connect``, and
another tenant's ids answer 404 on both, exactly as ids that never existed.
"""

from __future__ import annotations

import datetime as dt
from typing import final

import msgspec
import structlog
import trio
from attrs import define, field

from .._core import (
    BackendNotFoundError,
    InvalidInputError,
    Job,
    JobError,
    JobNotFoundError,
    JobStatus,
    QmuxError,
    SessionNotFoundError,
    wall_now,
)
from .._http import Device, HttpError, JobProgram, Reply, Request, ServiceView, job_state, session_document
from .._version import __version__
from .._wire import JOB_STATES
from . import _backends, _codec
from ._auth import APIKEY_GRANT, IamTokens
from ._jobs import JobEntry, JobIndex
from ._schemas import (
    ERROR_CODES,
    BackendList,
    CreateSession,
    IamError,
    JobCreated,
    JobDocument,
    JobList,
    JobsQuery,
    JobState,
    SubmitJob,
    TokenRequest,
    TokenResponse,
    UpdateTags,
)

__all__ = ["IbmApi"]

_log = structlog.get_logger("qmux.ibm")


@final
@define(eq=False)
class IbmApi:
    """IBM's handlers, over the view of the service both front doors share."""

    view: ServiceView
    tokens: IamTokens
    #: the jobs this front door took, for ``GET /jobs`` (bounded like the core's own memory)
    jobs: JobIndex = field(init=False)
    #: the configuration documents' ``online_date``: when this server started
    online_date: str = field(init=False, factory=lambda: _iso(wall_now()))
    _configurations: dict[str, bytes] = field(init=False, factory=dict)

    @jobs.default
    def _job_index(self) -> JobIndex:
        return JobIndex(limit=2 * self.view.service.settings.retain_finished)

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
        return Reply.json(200, BackendList(devices=[Device.of(handle) for handle in self.view.service.backends()]))

    async def backend_configuration(self, request: Request) -> Reply:
        name = request.params["backend"]
        body = self._configurations.get(name)
        if body is None:  # static for the server's life, and large (all-to-all pairs): encoded once
            handle = self.view.service.backend(name)
            document = _backends.configuration(handle, version=__version__, online_date=self.online_date)
            body = self._configurations[name] = msgspec.json.encode(document)
        return Reply(200, body, {"content-type": "application/json"})

    async def backend_properties(self, request: Request) -> Reply:
        self.view.service.backend(request.params["backend"])  # 404 for an unknown name
        return Reply.json(200, {})  # no calibration data: the client then has none, as for a simulator

    async def usage(self, request: Request) -> Reply:
        return Reply.json(200, {})  # no usage limits: the client reads "usage_limit_reached" as absent

    # -- sessions ----------------------------------------------------------------------------

    async def create_session(self, request: Request) -> Reply:
        body: CreateSession = request.body
        details, _ = await self.view.open_session(request.tenant, body.backend, max_time=body.max_ttl, mode=body.mode)
        return Reply.json(200, session_document(details))

    # -- jobs --------------------------------------------------------------------------------

    async def submit_job(self, request: Request) -> Reply:
        body: SubmitJob = request.body
        if body.start_session:
            raise InvalidInputError(
                "start_session is IBM's legacy way to open a session with a job; open one with Session(backend) "
                "(POST /sessions) and submit to it"
            )
        try:
            target = await self.view.job_target(request.tenant, session_id=body.session_id, backend=body.backend)
        except (SessionNotFoundError, BackendNotFoundError) as exc:
            # not a 404: on this route the client reads 404 as "program not found"
            raise InvalidInputError(str(exc)) from exc
        inputs = _codec.decode_params(body.params, max_blob_bytes=self.view.limits.max_blob_bytes)
        job = await self.view.submit(request.tenant, target, body.program_id, inputs, None, body.tags)
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

    async def get_job(self, request: Request) -> Reply:
        """The job's state: a few dictionary lookups, since the client polls it every 0.1 s."""
        job = await self.view.job(request.tenant, request.params["job_id"])
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
                or (after is not None and entry.created < after)
                or (before is not None and entry.created > before)
            ):
                continue
            try:
                job = await self.view.service.job(job_id)
            except JobNotFoundError:
                continue  # the core has forgotten it
            if not wanted_tags <= set(await job.tags()):  # the core's tags: PUT /jobs/{id}/tags changes them
                continue
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
        job = await self.view.job(request.tenant, request.params["job_id"])
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
            return Reply.text(200, str(error))
        body = await trio.to_thread.run_sync(_codec.encode_result, value)
        return Reply(200, body, {"content-type": "application/json"})

    async def cancel_job(self, request: Request) -> Reply:
        """Cancel a queued or running job (SPEC J2); the root job's cancel fails its session (S14).

        A job that has already ended answers 409, as IBM's API does: the client then raises
        ``RuntimeInvalidStateError`` rather than marking a finished job cancelled on its side.
        Nothing changes on the server either way (S16).
        """
        job = await self.view.job(request.tenant, request.params["job_id"])
        status = JobStatus(await job.status())
        if status.is_final:
            raise HttpError(
                409,
                QmuxError(f"job {job.job_id} has already ended ({JOB_STATES[status]}); it cannot be cancelled"),
                code="job_not_cancellable",
            )
        await job.cancel()
        return Reply.empty()

    async def job_metrics(self, request: Request) -> Reply:
        """``job.metrics()`` (SPEC U1); ``usage`` also says what the client's ``job.usage()`` reads."""
        job = await self.view.job(request.tenant, request.params["job_id"])
        metrics = await job.metrics()
        final = JobStatus(await job.status()).is_final
        metrics["usage"] |= {
            "qpu_charge_time_seconds": metrics["usage"]["quantum_seconds"],
            "status": "complete" if final else "pending",
        }
        return Reply.json(200, metrics)

    async def update_tags(self, request: Request) -> Reply:
        """``job.update_tags(...)``: the job's tags are replaced (SPEC T1); the client reads them back."""
        body: UpdateTags = request.body
        job = await self.view.job(request.tenant, request.params["job_id"])
        await job.update_tags(body.tags)
        return Reply.empty()

    async def job_logs(self, request: Request) -> Reply:
        await self.view.job(request.tenant, request.params["job_id"])
        return Reply.text(200, "")  # simulated QPUs write no logs

    # -- helpers -----------------------------------------------------------------------------

    async def job_document(self, job: Job) -> JobDocument:
        """A job as ``GET /jobs/{id}`` shows it; a failed or cancelled job's reason is its error's message."""
        status, error = await job_state(job)
        entry = self.jobs.get(job.job_id)
        return JobDocument(
            id=job.job_id,
            backend=job.backend_name,
            state=JobState(
                status=status,
                reason=str(error) if error is not None else None,
                reason_code=ERROR_CODES.get(error.reason or "") if error is not None else None,
            ),
            program=JobProgram(id=job.program_id),
            session_id=job.session_id,
            created=entry.created_iso if entry is not None else None,
            tags=await job.tags(),
        )

    async def _job_exists(self, job_id: str) -> bool:
        try:
            await self.view.service.job(job_id)
        except JobNotFoundError:
            return False
        return True


def _iso(instant: dt.datetime) -> str:
    return instant.isoformat(timespec="seconds").replace("+00:00", "Z")


def _instant(text: str | None, name: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        instant = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"{name}={text!r} is not an ISO-8601 date and time") from None
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=dt.UTC)
