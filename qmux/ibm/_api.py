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

import contextlib
import datetime as dt
import functools
import importlib.metadata
from typing import Any, final

import attrs
import msgspec
import structlog
import trio
from attrs import define, field

from .._core import (
    BackendHandle,
    BackendNotFoundError,
    InvalidInputError,
    Job,
    JobError,
    JobNotFoundError,
    JobStatus,
    NotFoundError,
    QmuxError,
    SessionNotFoundError,
    wall_now,
)
from .._http import HttpError, JobProgram, Reply, Request, ServiceView, job_state, session_document
from .._version import __version__
from .._wire import JOB_STATES
from ..backends._device import device_config
from . import _backends, _codec
from ._auth import APIKEY_GRANT, IamTokens
from ._instance import INSTANCE, INSTANCE_NAME, PLAN, PLAN_ID
from ._jobs import JobEntry, JobIndex
from ._schemas import (
    ERROR_CODES,
    BackendList,
    BackendQuery,
    CreateSession,
    IamError,
    IbmDevice,
    InstanceUsage,
    JobCreated,
    JobDocument,
    JobList,
    JobQuery,
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
    #: when this server started: the configurations' ``online_date`` and the calibrations' date
    started: dt.datetime = field(init=False, factory=wall_now)
    #: the encoded configuration and properties documents, by backend: static for the server's life
    _configurations: dict[str, bytes] = field(init=False, factory=dict)
    _properties: dict[str, bytes] = field(init=False, factory=dict)

    @property
    def online_date(self) -> str:
        return _iso(self.started)

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
        """Every backend, mock devices included: the client leaves those out unless asked (``include_mocks``)."""
        devices = []
        for handle in self.view.service.backends():
            config = device_config(handle.config)
            kind = "mock" if config.mock else "simulator" if config.simulator else "qpu"
            devices.append(IbmDevice.of(handle, physical_qubits=config.num_qubits, device_class=kind))
        return Reply.json(200, BackendList(devices=devices))

    async def backend_configuration(self, request: Request) -> Reply:
        handle = self._calibrated_backend(request)
        body = self._configurations.get(handle.name)
        if body is None:  # static for the server's life, and large: encoded once
            document = _backends.configuration(handle, version=__version__, online_date=self.online_date)
            body = self._configurations[handle.name] = msgspec.json.encode(document)
        return Reply(200, body, {"content-type": "application/json"})

    async def backend_properties(self, request: Request) -> Reply:
        """The backend's calibration (`_backends.properties`), the same on every call.

        Being a non-empty document is what lets the client cache it: it asks for an empty one
        again on every access to ``backend.target``.
        """
        handle = self._calibrated_backend(request)
        body = self._properties.get(handle.name)
        if body is None:
            document = _backends.properties(handle, version=__version__, updated=self.started)
            body = self._properties[handle.name] = msgspec.json.encode(document)
        return Reply(200, body, {"content-type": "application/json"})

    def _calibrated_backend(self, request: Request) -> BackendHandle:
        """The backend the path names (404 if none); a ``calibration_id`` that is not its calibration is a 404 too."""
        handle = self.view.service.backend(request.params["backend"])
        query: BackendQuery | None = request.query
        if query is not None and query.calibration_id is not None:
            self._check_calibration(handle, query.calibration_id, BackendNotFoundError)
        return handle

    @staticmethod
    def _check_calibration(handle: BackendHandle, calibration_id: str, error: type[QmuxError]) -> None:
        current = _backends.calibration(handle.name, device_config(handle.config)).calibration_id
        if calibration_id != current:
            raise error(
                f"backend {handle.name!r} has no calibration {calibration_id!r}; its calibration is {current!r} "
                "(leave calibration_id out to use it)"
            )

    # -- IBM Cloud's instance look-up ---------------------------------------------------------

    async def search_instances(self, request: Request) -> Reply:
        """Global Search's answer to the client's ``service_name:quantum-computing`` query: this server's instance.

        The client asks when it is given no instance, then reads the plan of each instance
        that has a backend allocation (``doc.extensions``) from the catalog.
        """
        item = {
            "crn": INSTANCE,
            "name": INSTANCE_NAME,
            "service_plan_unique_id": PLAN_ID,
            "doc": {"extensions": {"backends": [handle.name for handle in self.view.service.backends()]}},
            "tags": [],
        }
        return Reply.json(200, {"items": [item], "limit": 100, "search_cursor": None})

    async def catalog_entry(self, request: Request) -> Reply:
        """Global Catalog's entry for the instance's plan (``plan`` and ``pricing_type`` for the client)."""
        plan_id = request.params["plan_id"]
        if plan_id != PLAN_ID:
            raise NotFoundError(f"no catalog entry {plan_id!r}; this server's plan is {PLAN_ID!r}")
        entry = {"id": PLAN_ID, "name": PLAN.lower(), "kind": "plan", "overview_ui": {"en": {"display_name": PLAN}}}
        return Reply.json(200, {**entry, "metadata": {"pricing": {"type": "free"}}})

    async def usage(self, request: Request) -> Reply:
        """``service.usage()``: the tenant's use of the instance (SPEC U1), under no limit.

        ``usage_consumed_seconds`` is the quantum seconds of the tenant's jobs on every backend,
        of the jobs the server still remembers (retention drops the oldest); no limit is ever
        reached, so the client warns of none. In a cluster each node counts the jobs it holds
        and the route sums them (`qmux._http.Totals`).
        """
        backends = await self.view.usage(request.tenant, None, None)
        consumed = sum(entry["quantum_seconds"] for entry in backends.values())
        usage = InstanceUsage(
            instance_id=INSTANCE, plan_id=PLAN_ID, usage_consumed_seconds=consumed, usage_limit_reached=False
        )
        return Reply.json(200, usage)

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
        if body.calibration_id is not None:  # a job runs with the backend's calibration, or not at all
            backend = target if isinstance(target, str) else target.backend_name
            self._check_calibration(self.view.service.backend(backend), body.calibration_id, InvalidInputError)
        inputs = _codec.decode_params(body.params, max_blob_bytes=self.view.limits.max_blob_bytes)
        job = await self.view.submit(request.tenant, target, body.program_id, inputs, None, body.tags)
        entry = JobEntry(
            tenant=request.tenant,
            session_id=job.session_id,
            backend=job.backend_name,
            program_id=job.program_id,
            created=self.jobs.stamp(),
            params=None if body.private else inputs,
            private=body.private,
        )
        await self.jobs.add(job.job_id, entry, self._job_exists)
        _log.info("ibm.job_submitted", job_id=job.job_id, session_id=job.session_id, program_id=job.program_id)
        return Reply.json(200, JobCreated(id=job.job_id, backend=job.backend_name, session_id=job.session_id))

    async def get_job(self, request: Request) -> Reply:
        """The job's state: a few dictionary lookups, since the client polls it every 0.1 s.

        Without ``exclude_params=true`` (``job.inputs``), its params too, in ``RuntimeEncoder``
        JSON, as submitted; a private job has none.
        """
        job = await self._job(request)
        query: JobQuery | None = request.query
        params: msgspec.Raw | None = None
        entry = self.jobs.get(job.job_id)
        if (query is None or not query.exclude_params) and entry is not None and entry.params is not None:
            params = msgspec.Raw(await trio.to_thread.run_sync(_codec.encode_result, entry.params))
        return Reply.json(200, await self.job_document(job, params=params))

    async def list_jobs(self, request: Request) -> Reply:
        """``service.jobs(...)``: the tenant's jobs taken through this front door, filtered, by
        ``(created, id)``: newest first (``sort=DESC``) or oldest first (``ASC``); ``limit`` of
        them from ``offset``, and ``count``, how many match. A cluster's nodes list each their
        own by that key, and the route merges them (`qmux._http.OffsetListing`)."""
        query: JobsQuery = request.query
        after = _instant(query.created_after, "created_after")
        before = _instant(query.created_before, "created_before")
        wanted_tags = set(query.tags)
        mocks = {h.name for h in self.view.service.backends() if device_config(h.config).mock}
        matching: list[Job] = []
        for job_id, entry in self.jobs.in_order(newest_first=query.sort == "DESC"):
            if (
                entry.tenant != request.tenant
                or entry.deleted
                or (not query.include_mocks and entry.backend in mocks)
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
        answer is a 200 too; a job that has not ended yet is a 409. A private job's result is
        answered once: later asks get no content, as IBM's API does.
        """
        job = await self._job(request)
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
        entry = self.jobs.get(job.job_id)
        if entry is not None and entry.private:
            if entry.result_read:
                return Reply.empty()
            self.jobs.update(job.job_id, result_read=True)
        body = await trio.to_thread.run_sync(_codec.encode_result, value)
        return Reply(200, body, {"content-type": "application/json"})

    async def cancel_job(self, request: Request) -> Reply:
        """Cancel a queued or running job (SPEC J2); the root job's cancel fails its session (S14).

        A job that has already ended answers 409, as IBM's API does: the client then raises
        ``RuntimeInvalidStateError`` rather than marking a finished job cancelled on its side.
        Nothing changes on the server either way (S16).
        """
        job = await self._job(request)
        status = JobStatus(await job.status())
        if status.is_final:
            raise HttpError(
                409,
                QmuxError(f"job {job.job_id} has already ended ({JOB_STATES[status]}); it cannot be cancelled"),
                code="job_not_cancellable",
            )
        await job.cancel()
        return Reply.empty()

    async def job_logs(self, request: Request) -> Reply:
        await self._job(request)
        return Reply.text(200, "")  # simulated QPUs write no logs

    async def job_metrics(self, request: Request) -> Reply:
        """``job.metrics()`` (SPEC U1: the core's, with ``queue_seconds`` and ``attempts``) and ``job.usage()``.

        IBM's client reads the usage as ``usage.qpu_charge_time_seconds``, final once
        ``usage.status`` is no longer ``"pending"``: the device time the job took. IBM's
        ``qiskit_version`` names the software that ran the job (`software_versions`).
        """
        job = await self._job(request)
        metrics = dict(await job.metrics())
        metrics["qiskit_version"] = software_versions()
        final = JobStatus(await job.status()).is_final
        usage = dict(metrics.get("usage") or {})
        usage["qpu_charge_time_seconds"] = usage.get("quantum_seconds", 0.0)
        usage["status"] = "complete" if final else "pending"
        metrics["usage"] = usage
        return Reply.json(200, metrics)

    async def update_tags(self, request: Request) -> Reply:
        """``job.update_tags(...)``: the job's tags are replaced in the core (SPEC T1); the client reads them back."""
        job = await self._job(request)
        body: UpdateTags = request.body
        await job.update_tags(body.tags)
        return Reply.empty()

    async def delete_job(self, request: Request) -> Reply:
        """Delete a job (``service.delete_job``): a queued or running one is cancelled first (SPEC J2).

        The job is gone from IBM's API at once (404, as IBM answers); the core keeps its record
        until retention drops it, so the native API still shows it (see `_jobs`).
        """
        job = await self._job(request)
        if not JobStatus(await job.status()).is_final:
            await job.cancel()
        if self.jobs.update(job.job_id, deleted=True, params=None) is None:
            await self._index_foreign(request.tenant, job, deleted=True)
        _log.info("ibm.job_deleted", job_id=job.job_id)
        return Reply.empty()

    # -- helpers -----------------------------------------------------------------------------

    async def _job(self, request: Request) -> Job:
        """The tenant's job the path names; 404 if it is none of theirs, or if it was deleted here."""
        job_id = request.params["job_id"]
        entry = self.jobs.get(job_id)
        if entry is not None and entry.deleted:
            raise JobNotFoundError(f"no job with id {job_id!r} (it was deleted)")
        return await self.view.job(request.tenant, job_id)

    async def _index_foreign(self, tenant: str, job: Job, **fields: Any) -> None:
        """An entry for a job this front door did not take (submitted natively), with `fields`."""
        entry = JobEntry(
            tenant=tenant,
            session_id=job.session_id,
            backend=job.backend_name,
            program_id=job.program_id,
            created=self.jobs.stamp(),
        )
        await self.jobs.add(job.job_id, attrs.evolve(entry, **fields), self._job_exists)

    async def job_document(self, job: Job, *, params: msgspec.Raw | None = None) -> JobDocument:
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
            private=entry.private if entry is not None else False,
            params=params,
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


@functools.cache
def software_versions() -> str:
    """IBM's ``qiskit_version`` of a job's metrics: the software that ran it, as ``name-version`` pairs.

    IBM lists its runtime's packages (``"qiskit_ibm_runtime-0.x,qiskit-2.x"``); a qmux server
    lists itself, and the qiskit its simulated devices run on when it is installed.
    """
    versions = [f"qmux-{__version__}"]
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        versions.append(f"qiskit-{importlib.metadata.version('qiskit')}")
    return ",".join(versions)
