"""What users hold: `Session` and `BackendHandle`, over ports that are local or remote.

A handle holds no state of its own beyond ids; it forwards to a *port*: the session actor in
process, or an HTTP client for a remote service. That is how ``qmux.connect(...)`` gives remote
users the same API as ``qmux.open_service()``.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Callable, Iterable
from types import TracebackType
from typing import Any, Protocol, final

import trio
from attrs import define, field

from ._backend import BackendConfig
from ._errors import InvalidInputError
from ._events import Event
from ._jobs import Job, JobPort

__all__ = ["BackendHandle", "Batch", "ServiceAPI", "Session", "SessionPort", "current_session"]

_current_session: contextvars.ContextVar[Session | None] = contextvars.ContextVar("qmux_session", default=None)


def current_session() -> Session | None:
    """The session of the innermost enclosing ``async with Session(...)`` (SPEC P3), if any."""
    return _current_session.get()


class SessionPort(Protocol):
    """What a `Session` handle talks to."""

    @property
    def session_id(self) -> str: ...
    @property
    def backend_name(self) -> str: ...

    async def submit(
        self, program_id: str, inputs: Any, options: dict[str, Any] | None = None, tags: Iterable[str] = ()
    ) -> JobPort: ...
    def subscribe(self) -> AsyncIterator[Event]: ...
    async def close(self) -> None: ...
    async def cancel(self) -> None: ...
    async def status(self) -> str: ...
    async def details(self) -> dict[str, Any]: ...


class ServiceAPI(Protocol):
    """The service as handles see it; `qmux.Service` and the remote client both provide it."""

    def backends(self) -> list[BackendHandle]: ...
    def backend(self, name: str) -> BackendHandle: ...
    def least_busy(
        self, *, operational: bool = True, simulator: bool | None = False, min_num_qubits: int | None = None
    ) -> BackendHandle: ...
    def open_session_port(
        self,
        backend: str,
        *,
        max_time: object = None,
        mode: str = "dedicated",
        failure_policy: str = "continue",
        max_jobs: int | None = None,
    ) -> SessionPort: ...
    async def submit_job(
        self,
        backend: str,
        program_id: str,
        inputs: Any,
        options: dict[str, Any] | None = None,
        *,
        tags: Iterable[str] = (),
    ) -> JobPort: ...
    async def queue_info(self, backend: str) -> dict[str, int]: ...
    async def job(self, job_id: str) -> Job: ...


@final
@define(eq=False)
class BackendHandle:
    """A backend as users see it: its name, its configuration and its queue depth."""

    name: str
    config: BackendConfig
    service: ServiceAPI = field(repr=False)
    _pending_jobs: Callable[[], int] = field(repr=False, alias="pending_jobs")

    @property
    def pending_jobs(self) -> int:
        """Jobs queued for this backend, in sessions and in job mode (what `least_busy` compares)."""
        return self._pending_jobs()

    @property
    def operational(self) -> bool:
        return self.config.operational

    @property
    def simulator(self) -> bool:
        return self.config.simulator

    @property
    def num_qubits(self) -> int:
        return self.config.num_qubits

    async def run(
        self, program_id: str, inputs: Any, *, options: dict[str, Any] | None = None, tags: Iterable[str] = ()
    ) -> Job:
        """Submit a job outside any session: job mode (SPEC P3); `tags` label it (T1)."""
        return Job(await self.service.submit_job(self.name, program_id, inputs, options, tags=tags))

    async def queue_info(self) -> dict[str, int]:
        """``{"priority": n, "normal": m}`` (SPEC Q1): jobs of active sessions and batches, and jobs in
        the line."""
        return await self.service.queue_info(self.name)


class Session:
    """A session on one backend (SPEC S1-S19).

    ``Session(service=service, backend="name")`` or ``Session(backend=service.backend("name"))``
    opens it at once; use it as ``async with`` (closed on exit, S2, S12) or close it by hand.

    `failure_policy`: ``"continue"`` (a failed job fails only itself, J3) or ``"abort"`` (the
    first failed job closes the session, F1). `max_jobs`: the session accepts that many jobs,
    then closes once they have run (L1).
    """

    __slots__ = ("_port", "_service", "_tokens")

    def __init__(
        self,
        service: ServiceAPI | None = None,
        backend: str | BackendHandle | None = None,
        max_time: str | float | None = None,
        *,
        mode: str = "dedicated",
        failure_policy: str = "continue",
        max_jobs: int | None = None,
    ) -> None:
        if backend is None:
            raise InvalidInputError("Session needs a backend: its name, or a handle from service.backend()")
        if isinstance(backend, BackendHandle):
            service = service if service is not None else backend.service
            backend_name = backend.name
        elif isinstance(backend, str):
            backend_name = backend
        else:
            raise InvalidInputError(
                f"backend={backend!r} is neither a backend name nor a backend handle from service.backend()"
            )
        if service is None:
            raise InvalidInputError(
                f"Session(backend={backend_name!r}) needs service=...: pass the service, or a handle from it"
            )
        if not hasattr(service, "open_session_port"):
            raise InvalidInputError(f"service={service!r} is not a qmux service: use open_service() or connect()")
        self._service = service
        self._port = service.open_session_port(
            backend_name, max_time=max_time, mode=mode, failure_policy=failure_policy, max_jobs=max_jobs
        )
        #: the context's previous sessions, one per ``async with`` entered (made at the first: most handles never enter)
        self._tokens: list[contextvars.Token[Session | None]] | None = None

    @classmethod
    def _from_port(cls, service: ServiceAPI, port: SessionPort) -> Session:
        """A handle on a session that already exists (``Session.from_id`` and the like)."""
        session = cls.__new__(cls)
        session._service, session._port, session._tokens = service, port, None
        return session

    @property
    def session_id(self) -> str:
        return self._port.session_id

    @property
    def backend_name(self) -> str:
        return self._port.backend_name

    @property
    def service(self) -> ServiceAPI:
        return self._service

    async def run(
        self, program_id: str, inputs: Any, *, options: dict[str, Any] | None = None, tags: Iterable[str] = ()
    ) -> Job:
        """Submit a job to this session; refused with `SessionClosedError` once it stopped accepting (S15).

        `tags` label the job (SPEC T1); ``service.jobs(tags=...)`` finds it by them.
        """
        return Job(await self._port.submit(program_id, inputs, options, tags))

    def events(self) -> AsyncIterator[Event]:
        """Its state now, then every change (with its reason), its jobs' transitions and warnings,
        until it has closed and its jobs have ended (SPEC E1)."""
        return self._port.subscribe()

    async def usage(self) -> float:
        """Seconds of use: ``details()["usage_time"]`` (SPEC U1, S18, B3)."""
        return float((await self._port.details())["usage_time"])

    async def status(self) -> str:
        """Exactly one of the four strings of SPEC S17."""
        return await self._port.status()

    async def details(self) -> dict[str, Any]:
        """The mapping of SPEC S18."""
        return await self._port.details()

    async def close(self) -> None:
        """Stop accepting jobs; queued and running ones still finish (S12). Harmless twice (S16)."""
        await self._port.close()

    async def cancel(self) -> None:
        """Close at once, failing queued jobs as cancelled; running ones finish (S13)."""
        await self._port.cancel()

    async def __aenter__(self) -> Session:
        if self._tokens is None:
            self._tokens = []
        self._tokens.append(_current_session.set(self))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._tokens, "__aexit__ without __aenter__"
        _current_session.reset(self._tokens.pop())
        with trio.CancelScope(shield=True):  # closing is one message; it must happen even when cancelled
            await self.close()

    def __repr__(self) -> str:
        return f"<qmux.Session {self.session_id} backend={self.backend_name!r}>"


@final
class Batch(Session):
    """A batch on one backend (SPEC B1-B3): ``Session`` with ``mode="batch"``, the same forms.

    A batch never holds its backend idle: when none of its jobs is queued, others run at once
    (B2); while it is active its queued jobs still go first. Its ``usage_time`` counts only the
    time its jobs ran (B3).
    """

    __slots__ = ()

    def __init__(
        self,
        service: ServiceAPI | None = None,
        backend: str | BackendHandle | None = None,
        max_time: str | float | None = None,
        *,
        failure_policy: str = "continue",
        max_jobs: int | None = None,
    ) -> None:
        super().__init__(service, backend, max_time, mode="batch", failure_policy=failure_policy, max_jobs=max_jobs)

    def __repr__(self) -> str:
        return f"<qmux.Batch {self.session_id} backend={self.backend_name!r}>"
