"""The service as the front doors show it to tenants: their own sessions and jobs, and a shutdown gate.

Both APIs reach the core through one `ServiceView`, so tenancy, shutdown and the few steps they
share (open a session, place and submit a job) are written once:

- A tenant sees only what it owns: the core keeps each session's and job's ``owner`` tag (in
  the journal too, so it survives a restart), and another tenant's id answers the same 404 as
  an id that never existed, so ids cannot even be probed.
- A tenant's open sessions and its queued or running jobs are bounded per tenant (429 past
  ``max_open_sessions_per_tenant``, ``max_queued_jobs_per_tenant``), counted by the core per
  owner: one tenant's backlog never refuses another's work.
- From `begin_shutdown` on, new sessions and jobs are refused with 503 and every request held in
  a `long_poll` is answered at once; reads still work. Event streams end, and new ones are refused.
- Each session it opens is told to its observers (`WorkObserver`: what metrics follow); jobs
  are told by the core itself, however they came (`Service.observe_jobs`).
- Listings, usage and event streams are the tenant's: the view passes ``owner=tenant`` to the
  core, which counts each stream's subscription against the tenant's bound
  (``ServiceSettings.max_subscribers_per_owner``).
- In a cluster, it says what this node's service holds (`holds_session`, `holds_job`,
  `holds_backend`, whoever's they are): what it does not hold, another node may (`qmux._http.Peers`).

It re-implements no session rule: each step is a call to the same public core API an in-process
user calls, and every rule and error comes from the core.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final, Literal, final

import structlog
import trio
from attrs import define, field, frozen

from .._core import (
    JOB_EVENT_KINDS,
    CapacityError,
    Event,
    InvalidInputError,
    Job,
    JobError,
    JobNotFoundError,
    JobStatus,
    NotFoundError,
    Service,
    ServiceClosedError,
    Session,
    SessionNotFoundError,
    SessionState,
    Subscription,
    job_ended,
)
from ._limits import HttpLimits
from ._sse import Feed

__all__ = ["ServiceView", "Taken", "WorkObserver"]

_log = structlog.get_logger("qmux.http")


@frozen
class Taken:
    """A session or a job the server took on: a session a front door opened (`ServiceView` tells
    its observers), or a session or job a restart recovered (`WatchedJournal.recovered`)."""

    kind: Literal["session", "job"]
    id: str
    backend: str
    tenant: str


#: told of every session a front door opens; called inline: cheap, and must not raise
WorkObserver = Callable[[Taken], None]


@final
@define(eq=False)
class ServiceView:
    """One service, as the front doors of one server show it."""

    service: Service
    limits: HttpLimits
    #: told of each session and job taken on, by either front door
    observers: list[WorkObserver] = field(factory=list, init=False)
    _stopping: bool = field(default=False, init=False)
    _long_polls: set[trio.CancelScope] = field(factory=set, init=False)
    #: the subscriptions of the event streams being sent, ended at shutdown
    _streams: set[Subscription] = field(factory=set, init=False)
    #: per tenant: jobs being submitted now (not yet counted by the core)
    _submitting: dict[str, int] = field(factory=dict, init=False)

    # -- shutdown ----------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping

    def begin_shutdown(self) -> None:
        """Refuse new sessions and jobs from now on, and answer every waiting long poll at once."""
        self._stopping = True
        for scope in list(self._long_polls):
            scope.cancel()
        for subscription in list(self._streams):
            subscription.end()

    def refuse_new_work(self) -> None:
        """Raise the 503 of a server that is shutting down, once it is."""
        if self._stopping:
            raise ServiceClosedError("the server is shutting down and accepts no new sessions or jobs")

    @contextmanager
    def long_poll(self, seconds: float) -> Iterator[trio.CancelScope]:
        """A scope that ends the block after `seconds` (capped by the server's long-poll limit), or at shutdown."""
        wait = 0.0 if self._stopping else min(seconds, self.limits.long_poll)
        with trio.move_on_after(wait) as scope:
            self._long_polls.add(scope)
            try:
                yield scope
            finally:
                self._long_polls.discard(scope)

    # -- what a tenant owns ------------------------------------------------------------------

    async def session(self, tenant: str, session_id: str) -> Session:
        """The tenant's session, else the 404 of an unknown id."""
        if self.service.session_owner(session_id) != tenant:
            raise SessionNotFoundError(f"no session with id {session_id!r}")
        return await self.service.session(session_id)

    async def job(self, tenant: str, job_id: str) -> Job:
        """The tenant's job, else the 404 of an unknown id."""
        if self.service.job_owner(job_id) != tenant:
            raise JobNotFoundError(f"no job with id {job_id!r}")
        return await self.service.job(job_id)

    # -- what this node holds (in a cluster, other nodes hold the rest) ---------------------

    def holds_session(self, session_id: str) -> bool:
        """Whether the service holds session `session_id`, whoever's it is (one dict lookup)."""
        return self.service.session_owner(session_id) is not None

    def holds_job(self, job_id: str) -> bool:
        """Whether the service holds job `job_id`, whoever's it is (one dict lookup)."""
        return self.service.job_owner(job_id) is not None

    def holds_backend(self, name: str) -> bool:
        """Whether the service runs backend `name` (a malformed name counts as held: here is where it is refused)."""
        try:
            self.service.backend(name)
        except NotFoundError:
            return False
        except InvalidInputError:
            return True
        return self.service.serves(name)

    # -- new work ----------------------------------------------------------------------------

    async def open_session(
        self,
        tenant: str,
        backend: str,
        *,
        max_time: float | None,
        mode: str,
        failure_policy: str = "continue",
        max_jobs: int | None = None,
        session_id: str | None = None,
    ) -> tuple[Mapping[str, Any], bool]:
        """Open a session for `tenant` (SPEC S1, S4, B1, F1, L1): its details, and whether it is new.

        A front door may choose the id (the native API derives it from its client's seed, in the
        tenant's namespace); the id of a session the tenant already has on the same backend is a
        retried create, answered with that session as it is now. Past the tenant's open sessions,
        429. The answer waits until the session is in the journal, as a job's does: what is
        acknowledged survives.
        """
        self.refuse_new_work()
        if session_id is not None and self.service.session_owner(session_id) == tenant:
            existing = await self.service.session(session_id)
            if existing.backend_name == backend:
                return await existing.details(), False
        limit = self.limits.max_open_sessions_per_tenant
        if self.service.open_sessions_of(tenant) >= limit:
            raise CapacityError(
                f"tenant {tenant!r} has {limit} sessions open, its limit (max_open_sessions_per_tenant); "
                "close some first"
            )
        port = self.service.open_session_port(
            backend,
            max_time=max_time,
            mode=mode,
            failure_policy=failure_policy,
            max_jobs=max_jobs,
            session_id=session_id,
            owner=tenant,
        )
        await port.wait_durable()
        _log.info("http.session_opened", session_id=port.session_id, tenant=tenant, backend=backend)
        self._took(Taken("session", port.session_id, backend, tenant))
        return await port.details(), True

    async def job_target(self, tenant: str, *, session_id: str | None, backend: str | None) -> Session | str:
        """Where a new job goes: the tenant's session, or a backend's name in job mode.

        Checked before the inputs are decoded (which may be costly): the session must be the
        tenant's, and a backend named beside it must be its own.
        """
        self.refuse_new_work()
        self._check_jobs(tenant)
        if session_id is not None:
            session = await self.session(tenant, session_id)
            if backend is not None and backend != session.backend_name:
                raise InvalidInputError(
                    f"backend={backend!r} but session {session_id} runs on {session.backend_name!r}; "
                    "leave backend out or name the session's"
                )
            return session
        if backend is None:
            raise InvalidInputError("a job needs a session_id, or a backend to run on in job mode")
        self.service.backend(backend)  # the 404 of an unknown backend, before anything else
        return backend

    async def submit(
        self,
        tenant: str,
        target: Session | str,
        program_id: str,
        inputs: Any,
        options: dict[str, Any] | None,
        tags: Iterable[str] = (),
    ) -> Job:
        """Submit a job to `target` (from `job_target`); a session's jobs are its owner's; `tags` label it (T1)."""
        self._check_jobs(tenant)
        self._submitting[tenant] = self._submitting.get(tenant, 0) + 1
        try:
            if isinstance(target, Session):
                job = await target.run(program_id, inputs, options=options, tags=tags)
            else:
                job = Job(await self.service.submit_job(target, program_id, inputs, options, tags=tags, owner=tenant))
        finally:
            left = self._submitting[tenant] - 1
            if left:
                self._submitting[tenant] = left
            else:
                del self._submitting[tenant]
        return job

    def _took(self, taken: Taken) -> None:
        for observer in self.observers:
            observer(taken)

    def _check_jobs(self, tenant: str) -> None:
        """Refuse a job past the tenant's limit: its queued and running jobs, and those being submitted.

        (One being submitted may be counted twice for a moment, once the core has it: never too many.)
        """
        limit = self.limits.max_queued_jobs_per_tenant
        if self.service.unfinished_jobs_of(tenant) + self._submitting.get(tenant, 0) >= limit:
            raise CapacityError(
                f"tenant {tenant!r} has {limit} jobs queued or running, its limit (max_queued_jobs_per_tenant); "
                "wait for some to finish"
            )

    def pending_jobs(self) -> dict[str, int]:
        """Each backend's queue depth."""
        return {handle.name: handle.pending_jobs for handle in self.service.backends()}

    # -- seeing what runs (SPEC V1, E1, U1) ----------------------------------------------------

    def sessions(self, tenant: str, **filters: Any) -> AsyncIterator[Session]:
        """The tenant's sessions, newest first, with the core's filters (SPEC V1)."""
        return self.service.sessions(owner=tenant, **filters)

    def jobs(self, tenant: str, **filters: Any) -> AsyncIterator[Job]:
        """The tenant's jobs, newest first, with the core's filters (SPEC V1, T1)."""
        return self.service.jobs(owner=tenant, **filters)

    async def usage(
        self, tenant: str, since: dt.datetime | None, until: dt.datetime | None
    ) -> dict[str, dict[str, float]]:
        """The tenant's usage per backend over a window (SPEC U1)."""
        return await self.service.usage(since, until, owner=tenant)

    async def follow(
        self,
        tenant: str,
        *,
        session_id: str | None = None,
        job_id: str | None = None,
        backend: str | None = None,
        after: int | None = None,
        current: bool = True,
    ) -> Feed:
        """A stream of the tenant's events (SPEC E1): one session's, one job's, or all (of a backend).

        A session's or job's stream starts with its state now (unless `current` is false) and ends
        as ``session.events()`` and ``job.events()`` do; `after` resumes a stream after the last
        event id its client saw (the hub replays what its history still holds, and says
        ``lagged`` if some are gone). Sessions whose clocks are parked are woken so that they arm
        the ITTL and max_time warnings, which are kept only while someone listens. Call
        `stream_ended` once the stream has ended.
        """
        if self._stopping:
            raise ServiceClosedError("the server is shutting down: no new event streams; reconnect to it later")
        if session_id is not None and job_id is not None:
            raise InvalidInputError("name one of session_id and job_id, not both: a job's events are in its session's")
        starts_with_state = current and after is None
        if session_id is not None:
            feed = await self._follow_session(tenant, session_id, after, starts_with_state)
        elif job_id is not None:
            feed = await self._follow_job(tenant, job_id, after, starts_with_state)
        else:
            feed = await self._follow_all(tenant, backend, after)
        self._streams.add(feed.subscription)
        return feed

    def stream_ended(self, feed: Feed) -> None:
        """A stream of `follow` has ended (its subscription is closed)."""
        self._streams.discard(feed.subscription)

    async def _follow_all(self, tenant: str, backend: str | None, after: int | None) -> Feed:
        if backend is not None:
            self.service.backend(backend)  # the 404 of an unknown backend
        hub = self.service.events_hub
        subscription = hub.subscribe(backend=backend, owner=tenant, after=after)
        # where the stream begins: a seq of its own, made (never published) with nothing between
        # the subscription and it, so every event it carries comes after, every other before
        start = hub.make("lagged").seq
        try:
            for state in _STARTED:  # the sessions whose clocks warn: a call wakes a parked actor to arm them
                async for session in self.sessions(tenant, backend=backend, state=state):
                    await session.status()
        except BaseException:
            subscription.close()
            raise
        return Feed(subscription, start=start)

    async def _follow_session(self, tenant: str, session_id: str, after: int | None, with_state: bool) -> Feed:
        session = await self.session(tenant, session_id)
        hub = self.service.events_hub
        subscription = hub.subscribe(session_id=session_id, owner=tenant, after=after)
        try:
            details = await session.details()  # this call also wakes a parked actor: its warnings are armed
            state = None
            if with_state:
                state = hub.make(
                    f"session.{details['state']}",
                    data={"reason": details["closed_reason"] or "current", "accepting_jobs": details["accepting_jobs"]},
                    session_id=session_id,
                    backend=session.backend_name,
                )
            if details["state"] == SessionState.CLOSED.value and not await self._unfinished(tenant, session_id):
                subscription.end()  # closed and its jobs ended: nothing more will come
        except BaseException:
            subscription.close()
            raise
        return Feed(subscription, state)

    async def _unfinished(self, tenant: str, session_id: str) -> bool:
        async for job in self.jobs(tenant, session_id=session_id):
            if not JobStatus(await job.status()).is_final:
                return True
        return False

    async def _follow_job(self, tenant: str, job_id: str, after: int | None, with_state: bool) -> Feed:
        job = await self.job(tenant, job_id)
        data: dict[str, Any] = {"program_id": job.program_id}
        if JobStatus(await job.status()).is_final:
            try:
                await job.result()  # ended: returns or raises its error at once
            except JobError as error:
                data |= {"reason": error.reason, "message": str(error)}
        # From here to the subscription nothing awaits anything that yields (a job's status is
        # read at once): the state sent first and the subscription's first event meet exactly.
        status = JobStatus(await job.status())
        hub = self.service.events_hub
        first: list[Event] = []
        if with_state or status.is_final:  # a stream of an ended job still ends with its end
            kind = JOB_EVENT_KINDS[status]
            first = [hub.make(kind, data=data, session_id=job.session_id, job_id=job_id, backend=job.backend_name)]
        subscription = hub.subscribe(job_id=job_id, owner=tenant, first=first, after=after, ends_with=job_ended)
        if status.is_final:
            subscription.end()
        return Feed(subscription)


_STARTED: Final = (SessionState.ACTIVE.value, SessionState.INACTIVE.value)
