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
  a `long_poll` is answered at once; reads still work.

It re-implements no session rule: each step is a call to the same public core API an in-process
user calls, and every rule and error comes from the core.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, final

import structlog
import trio
from attrs import define, field

from .._core import (
    CapacityError,
    InvalidInputError,
    Job,
    JobNotFoundError,
    Service,
    ServiceClosedError,
    Session,
    SessionNotFoundError,
)
from ._limits import HttpLimits

__all__ = ["ServiceView"]

_log = structlog.get_logger("qmux.http")


@final
@define(eq=False)
class ServiceView:
    """One service, as the front doors of one server show it."""

    service: Service
    limits: HttpLimits
    _stopping: bool = field(default=False, init=False)
    _long_polls: set[trio.CancelScope] = field(factory=set, init=False)
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
        self, tenant: str, target: Session | str, program_id: str, inputs: Any, options: dict[str, Any] | None
    ) -> Job:
        """Submit a job to `target` (from `job_target`); a session's jobs are its owner's."""
        self._check_jobs(tenant)
        self._submitting[tenant] = self._submitting.get(tenant, 0) + 1
        try:
            if isinstance(target, Session):
                return await target.run(program_id, inputs, options=options)
            return Job(await self.service.submit_job(target, program_id, inputs, options, owner=tenant))
        finally:
            left = self._submitting[tenant] - 1
            if left:
                self._submitting[tenant] = left
            else:
                del self._submitting[tenant]

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
