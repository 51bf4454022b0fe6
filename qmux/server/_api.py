"""The native API's own handlers: each a thin call into the service, through the shared `ServiceView`.

The handlers never re-implement a session rule: the view checks who owns what, they decode the
wire encoding, call the same public API an in-process user calls (``session.run(...)``,
``job.result()``), and encode the answer. Every rule and every error comes from the core, so the
HTTP front door cannot drift from it. The operations both APIs serve alike (read, close and
cancel a session, a backend's status) are `qmux._http.handlers`.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Mapping
from typing import Final, final

import msgspec
import trio
from attrs import field, frozen

from .. import _wire
from .._core import BackendHandle, InvalidInputError, Job, JobError, JobStatus, QmuxError
from .._http import (
    JobProgram,
    JobState,
    Reply,
    Request,
    ServiceView,
    decode_cursor,
    event_reply,
    job_key,
    job_state,
    page_of,
    parse_instant,
    session_document,
    session_key,
)
from ._schemas import (
    BackendConfiguration,
    BackendList,
    BackendUsage,
    CreateSession,
    Device,
    EventsQuery,
    JobDocument,
    JobList,
    JobMetrics,
    JobsQuery,
    QueueInfo,
    QueuePosition,
    ResultsQuery,
    SessionList,
    SessionsQuery,
    SubmitJob,
    Tags,
    UsageDocument,
    UsageQuery,
)

__all__ = ["PENDING_JOBS_HEADER", "Api"]

#: on every authenticated answer: each backend's queue depth, so a client's `pending_jobs` stays fresh
PENDING_JOBS_HEADER: Final = "Qmux-Pending-Jobs"
_MAX_PENDING_HEADER: Final = 4096
#: a body this large may carry arrays that take a while to inflate (up to ``max_blob_bytes``): its
#: params are decoded in a worker thread, where zlib lets the event loop, and every other tenant's
#: requests, go on meanwhile
THREAD_DECODE_BYTES: Final = 64 * 1024
#: such decodes at once, server-wide: what they hold in memory is this many ``max_blob_bytes`` at most
LARGE_DECODES: Final = 2


@final
@frozen
class Api:
    """The native API's handlers, over the view of the service both front doors share."""

    view: ServiceView
    #: each tenant's token digest, by name: the namespace of the session ids its seeds derive
    digests: Mapping[str, str]
    #: the worker threads that decode large bodies (`THREAD_DECODE_BYTES`), `LARGE_DECODES` at most
    large_decodes: trio.CapacityLimiter = field(factory=lambda: trio.CapacityLimiter(LARGE_DECODES))

    def pending_jobs_header(self) -> dict[str, str]:
        """``Qmux-Pending-Jobs``: each backend's queue depth as a JSON object; left out past 4 KiB."""
        pending = json.dumps(self.view.pending_jobs(), separators=(",", ":"), ensure_ascii=True)
        return {PENDING_JOBS_HEADER: pending} if len(pending) <= _MAX_PENDING_HEADER else {}

    async def list_backends(self, request: Request) -> Reply:
        devices = [_device(handle) for handle in self.view.service.backends()]
        return Reply.json(200, BackendList(devices=devices))

    async def create_session(self, request: Request) -> Reply:
        """Open a session; with an ``id_seed``, under the id derived from it and the tenant's token
        (`qmux._wire.session_id_from_seed`): the client knows it already, and no other tenant can
        reach it, so the answer says nothing about anyone else's ids."""
        body: CreateSession = request.body
        seed = body.id_seed
        session_id = None if seed is None else _wire.session_id_from_seed(self.digests[request.tenant], seed)
        details, created = await self.view.open_session(
            request.tenant,
            body.backend,
            max_time=body.max_ttl,
            mode=body.mode,
            failure_policy=body.failure_policy,
            max_jobs=body.max_jobs,
            session_id=session_id,
        )
        return Reply.json(201 if created else 200, session_document(details))

    async def submit_job(self, request: Request) -> Reply:
        body: SubmitJob = request.body
        target = await self.view.job_target(request.tenant, session_id=body.session_id, backend=body.backend)
        fields = {"params": body.params, "options": body.options} if body.options else {"params": body.params}
        decode = functools.partial(_wire.decode_fields, fields, max_blob_bytes=self.view.limits.max_blob_bytes)
        if request.body_size > THREAD_DECODE_BYTES:
            decoded = await trio.to_thread.run_sync(decode, limiter=self.large_decodes)
        else:
            decoded = decode()
        job = await self.view.submit(
            request.tenant, target, body.program_id, decoded["params"], decoded.get("options"), body.tags
        )
        return Reply.json(201, await job_document(job))

    async def get_job(self, request: Request) -> Reply:
        job = await self.view.job(request.tenant, request.params["job_id"])
        return Reply.json(200, await job_document(job))

    async def job_metrics(self, request: Request) -> Reply:
        job = await self.view.job(request.tenant, request.params["job_id"])
        return Reply.json(200, msgspec.convert(await job.metrics(), JobMetrics))

    async def job_results(self, request: Request) -> Reply:
        """The result once the job has ended (200), its error (409), or 202 if still running.

        ``?wait=S`` holds the request until the job ends, S seconds pass (capped by the
        server's long-poll limit), or the server begins to shut down: waiting without polling.
        """
        job = await self.view.job(request.tenant, request.params["job_id"])
        query: ResultsQuery = request.query
        if query.wait > 0 and not JobStatus(await job.status()).is_final:
            with self.view.long_poll(query.wait), contextlib.suppress(JobError):
                await job.result()
        if not JobStatus(await job.status()).is_final:
            return Reply.json(202, await job_document(job))
        value = await job.result()  # a failed or cancelled job raises its JobError: a 409 answer
        try:
            body = msgspec.json.encode(_wire.encode(value))
        except InvalidInputError as exc:
            raise QmuxError(f"job {job.job_id} finished, but its result cannot be sent over HTTP: {exc}") from exc
        return Reply(200, body, {"content-type": "application/json"})

    async def cancel_job(self, request: Request) -> Reply:
        """Cancel a job (SPEC J2); harmless once it has ended (S16)."""
        job = await self.view.job(request.tenant, request.params["job_id"])
        await job.cancel()
        return Reply.empty()

    # -- seeing what runs (SPEC V1, E1, U1, Q1, T1) --------------------------------------------

    async def list_sessions(self, request: Request) -> Reply:
        """A page of the tenant's sessions, newest first, and the cursor of the next (SPEC V1)."""
        query: SessionsQuery = request.query
        sessions = self.view.sessions(
            request.tenant,
            backend=query.backend,
            state=query.state,
            created_after=parse_instant(query.created_after, "created_after"),
            created_before=parse_instant(query.created_before, "created_before"),
            limit=query.limit + 1,
            start_after=decode_cursor(query.cursor),
        )
        page = await page_of(sessions, query.limit, session_key)
        documents = [session_document(await session.details()) for session in page.items]
        return Reply.json(200, SessionList(sessions=documents, next=page.cursor))

    async def list_jobs(self, request: Request) -> Reply:
        """A page of the tenant's jobs, newest first, and the cursor of the next (SPEC V1, T1)."""
        query: JobsQuery = request.query
        jobs = self.view.jobs(
            request.tenant,
            status=query.status,
            session_id=query.session_id,
            backend=query.backend,
            created_after=parse_instant(query.created_after, "created_after"),
            created_before=parse_instant(query.created_before, "created_before"),
            tags=tuple(query.tags),
            limit=query.limit + 1,
            start_after=decode_cursor(query.cursor),
        )
        page = await page_of(jobs, query.limit, job_key)
        return Reply.json(200, JobList(jobs=[await job_document(job) for job in page.items], next=page.cursor))

    async def events(self, request: Request) -> Reply:
        """Server-Sent Events of the tenant's: one session's, one job's, or all (SPEC E1).

        ``Last-Event-ID`` resumes after that event; the stream ends when the session closed
        with its jobs ended, the job ended, or the server shuts down.
        """
        query: EventsQuery = request.query
        feed = await self.view.follow(
            request.tenant,
            session_id=query.session_id,
            job_id=query.job_id,
            backend=query.backend,
            after=_last_event_id(request.header("last-event-id")),
            current=query.current,
        )
        return event_reply(feed, on_close=lambda: self.view.stream_ended(feed))

    async def usage(self, request: Request) -> Reply:
        """The tenant's usage per backend: jobs that ran in the window and their seconds (SPEC U1)."""
        query: UsageQuery = request.query
        totals = await self.view.usage(
            request.tenant, parse_instant(query.since, "since"), parse_instant(query.until, "until")
        )
        backends = {
            name: BackendUsage(jobs=int(entry["jobs"]), quantum_seconds=entry["quantum_seconds"])
            for name, entry in totals.items()
        }
        return Reply.json(200, UsageDocument(backends=backends))

    async def backend_queue(self, request: Request) -> Reply:
        """``{"priority", "normal"}``: jobs of active sessions and batches, and jobs in the line (SPEC Q1)."""
        info = await self.view.service.queue_info(request.params["backend"])
        return Reply.json(200, QueueInfo(priority=info["priority"], normal=info["normal"]))

    async def job_queue(self, request: Request) -> Reply:
        """``{"position": n}``: the jobs that start before this one, null once it runs or ended (SPEC Q1)."""
        job = await self.view.job(request.tenant, request.params["job_id"])
        return Reply.json(200, QueuePosition(position=await job.queue_position()))

    async def update_tags(self, request: Request) -> Reply:
        """Replace a job's tags (SPEC T1)."""
        body: Tags = request.body
        job = await self.view.job(request.tenant, request.params["job_id"])
        await job.update_tags(body.tags)
        return Reply.empty()


def _device(handle: BackendHandle) -> Device:
    fields = {name: getattr(handle.config, name) for name in BackendConfiguration.__struct_fields__}
    return Device.of(handle, configuration=msgspec.convert(fields, BackendConfiguration))


async def job_document(job: Job) -> JobDocument:
    """A job as ``GET /jobs/{id}`` shows it; a failed or cancelled job's reason is its error's message."""
    status, error = await job_state(job)
    return JobDocument(
        id=job.job_id,
        backend=job.backend_name,
        session_id=job.session_id,
        program=JobProgram(id=job.program_id),
        state=JobState(status=status, reason=str(error) if error is not None else None),
        tags=await job.tags(),
        created=(await job.metrics())["timestamps"]["created"],
    )


def _last_event_id(header: str | None) -> int | None:
    """``Last-Event-ID``: the seq of the last event a client saw (ignored if not a number, as SSE says)."""
    if header is None or not header.strip().isdigit():
        return None
    return int(header.strip())
