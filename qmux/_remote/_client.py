"""The remote client: ``qmux.connect(url, token=...)`` gives the same Python API as ``open_service()``.

::

    async with qmux.connect("http://127.0.0.1:8765", token=token) as service:
        async with qmux.Session(service=service, backend="fake_sherbrooke") as session:
            job = await session.run("echo", {"x": 1})
            print(await job.result())

`RemoteService` implements the `ServiceAPI` protocol that `Session`, `BackendHandle`, `Job`
and the primitives are written against, so they work unchanged; errors come back as the same
qmux exception types (`qmux._wire` maps them both ways).

Three things the HTTP round trip changes, and how the client keeps the API the same:

* ``backends()``, ``backend()`` and ``least_busy()`` are synchronous: the backend list is read at
  connect; every answer of the server carries each backend's queue depth (a header), so
  ``pending_jobs`` is as fresh as the last call; ``await service.refresh()`` reads all again.
* ``Session(...)`` is a synchronous constructor: the client checks the request against the
  backend's configuration at once (the same checks and errors as in process), draws a random
  seed from which it and the server derive the session's id (`qmux._wire.session_id_from_seed`:
  the seed and the digest of its token, so that no tenant can name another's session), and
  creates the session on the server in the background at once, in
  the order sessions were opened. Every awaited call of the session waits for that creation
  first and raises its error, if any (a refusal only the server can make, such as its
  ``max_open_sessions``, so arrives at the first ``await`` rather than at ``Session(...)``).
* ``job.result()`` waits without polling in a tight loop: a long poll
  (``GET /jobs/{id}/results?wait=S``) holds each request until the job ends or S seconds pass.

``qmux.connect`` takes one node's URL or several (the nodes of a cluster, any of which answers
any request): it uses one while it answers and moves to the next when it fails (`Nodes`).
Which failed requests are sent again, and where, is the transport's (`RetryTransport`, as httpx
recommends): a request that cannot have reached a node is sent to the next; an idempotent one
also when the connection broke after sending; a job's submission that may have been received
is never sent twice: `OutcomeUnknownError` says so, and how to look. Long polls go on, and event
streams resume with ``Last-Event-ID``, on the next node. An ``https`` URL's certificate is
always verified: against the public CAs, or the CA given as ``verify``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final, final

import attrs
import httpx
import structlog
import trio

from .. import _wire
from .._core import (
    BackendConfig,
    BackendDirectory,
    BackendHandle,
    CapacityError,
    InvalidInputError,
    Job,
    JobError,
    JobStatus,
    QmuxError,
    ServiceClosedError,
    Session,
    SessionState,
    check_id,
    check_options,
    check_positive_int,
    check_program_id,
    check_session_request,
    check_tags,
    new_id,
    status_text,
)
from ._errors import OutcomeUnknownError
from ._nodes import DEFAULT_URL, Nodes, node_urls
from ._sse import RemoteEvents
from ._transport import ENDLESS, IDEMPOTENT, NodesFailed, OutcomeUnknown, RetryTransport, describe

__all__ = ["DEFAULT_URL", "RemoteJobPort", "RemoteService", "RemoteSessionPort", "RetryTransport", "connect"]

_log = structlog.get_logger("qmux.remote")

_STATUS_OF_STATE: Final = {word: status for status, word in _wire.JOB_STATES.items()}
#: items asked for per page of a listing (the server's default page)
_PAGE: Final = 100
#: tries in a row to get a dropped event stream back before its iterator raises
_EVENT_STREAM_TRIES: Final = 5
#: how far before a submission a search for it begins: the server's clock may differ from this machine's
_CLOCK_MARGIN: Final = dt.timedelta(minutes=1)
_DETAIL_OF_FIELD: Final = {wire: detail for detail, wire in _wire.SESSION_FIELDS.items()}


@asynccontextmanager
async def connect(
    url: str | Sequence[str] | None = None,
    *,
    token: str | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    long_poll: float = 30.0,
    max_connections: int = 100,
    transport: httpx.AsyncBaseTransport | None = None,
    verify: bool | str | os.PathLike[str] | ssl.SSLContext = True,
) -> AsyncIterator[RemoteService]:
    """Connect to a ``qmux serve`` server for the duration of the ``async with`` block.

    `url`: the server's base URL, or the URLs of several nodes of a cluster (a list, or one
    string with commas), tried in that order; default ``$QMUX_URL`` (the same forms), else
    ``http://127.0.0.1:8765``. `token` defaults to ``$QMUX_TOKEN``. `timeout` bounds each
    request (connect, write, pool, and read beyond a long poll's wait): a node that neither
    answers nor refuses costs that long before the next is tried. `retries`: how many more
    rounds over the nodes a failed request may make, pausing between rounds (see
    `RetryTransport` for which requests are sent again); `long_poll` is how long each result
    request may wait on the server. `transport` replaces the network for every node (tests
    pass ``httpx.ASGITransport(app)``; each request arrives at its node's URL); retries wrap it
    either way. `verify`: how an ``https`` server's certificate is checked: ``True`` against
    the public CAs httpx trusts (certifi's), a path to a PEM file of the CA(s) to trust (a
    private CA, or the server's own self-signed certificate), or an `ssl.SSLContext`.
    Certificates are always verified: no ``verify=False``.

    The server is asked for its backends at once, so a wrong token, or URLs none of which
    answers, fail here. Leaving the block does not close the sessions opened through it: they
    live on the server (close them, or use ``async with Session(...)``, which does).
    """
    nodes = Nodes(node_urls(url, os.environ))
    token = token if token is not None else os.environ.get("QMUX_TOKEN")
    if not token:
        raise InvalidInputError("connect() needs token=... (or the QMUX_TOKEN environment variable)")
    for name, value in (("timeout", timeout), ("long_poll", long_poll)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
            raise InvalidInputError(f"{name}={value!r} must be a positive number of seconds")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InvalidInputError(f"retries={retries!r} must be a whole number, 0 or more")
    inner = transport or httpx.AsyncHTTPTransport(
        verify=_ssl_context(verify),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
    )
    client = httpx.AsyncClient(
        base_url=nodes.urls[0],  # requests are built against the first node's URL; the transport picks the node
        transport=RetryTransport(inner, nodes=nodes, retries=retries),
        headers={"authorization": f"Bearer {token}", "user-agent": f"qmux/{_version()}"},
        timeout=httpx.Timeout(timeout),
    )
    body_error: BaseException | None = None
    async with client, trio.open_nursery() as nursery:
        service = RemoteService(
            client, nodes=nodes, timeout=timeout, long_poll=long_poll, token_sha256=_wire.token_digest(token)
        )
        service._nursery = nursery  # event streams read in tasks of the connection's own
        nursery.start_soon(service._create_sessions, name="qmux session creator")
        try:
            await service.refresh()
            _log.debug("remote.connected", url=service.url, backends=[h.name for h in service.backends()])
            yield service
        except BaseException as exc:  # re-raised below, outside the nursery, unwrapped
            body_error = exc
        finally:
            service._close()
            nursery.cancel_scope.cancel()
    if body_error is not None:
        raise body_error


@final
class RemoteService(BackendDirectory):
    """A qmux service on the other end of HTTP; make one with `qmux.connect`.

    It has the API of `qmux.Service` that handles use (the `ServiceAPI` protocol) plus
    ``await session(id)`` and ``await refresh()``; `url` is the node it uses now, `urls` all of them.
    """

    #: sessions waiting to be created on the server, at most (a bound, like every queue)
    MAX_CREATING: Final = 10_000

    def __init__(
        self, client: httpx.AsyncClient, *, nodes: Nodes, timeout: float, long_poll: float, token_sha256: str
    ) -> None:
        self._nodes = nodes
        self._token_sha256 = token_sha256
        self._client = client
        self._timeout = timeout
        self._long_poll = long_poll
        self._handles: dict[str, BackendHandle] = {}
        self._pending: dict[str, int] = {}
        self._closed = False
        self._nursery: trio.Nursery | None = None
        self._to_create, self._creations = trio.open_memory_channel[tuple["RemoteSessionPort", dict[str, Any]]](
            self.MAX_CREATING
        )

    @property
    def url(self) -> str:
        """The base URL of the node requests go to now (the first given, until it fails)."""
        return self._nodes.current_url

    @property
    def urls(self) -> tuple[str, ...]:
        """The base URLs of every node this connection may use, in the order given."""
        return tuple(self._nodes.shown(index) for index in range(len(self._nodes)))

    # -- backends ----------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read the backend list again: configurations and queue depths."""
        document = await self._call("GET", "/backends", expect=(200,))
        handles: dict[str, BackendHandle] = {}
        known = attrs.fields_dict(BackendConfig)
        try:
            for device in document["devices"]:
                name = str(device["name"])
                config = BackendConfig(**{k: v for k, v in device["configuration"].items() if k in known})
                handles[name] = BackendHandle(name, config, self, pending_jobs=self._pending_of(name))
                self._pending[name] = int(device["queue_length"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _garbled("GET /backends", exc) from exc
        self._handles = handles

    # -- sessions ----------------------------------------------------------------------------

    def open_session_port(
        self,
        backend: str,
        *,
        max_time: object = None,
        mode: str = "dedicated",
        failure_policy: str = "continue",
        max_jobs: int | None = None,
    ) -> RemoteSessionPort:
        """Check the request now (SPEC S1, S4, B1, F1, L1), then create the session on the server in the background."""
        self._check_open()
        terms = check_session_request(
            backend,
            self.backend(backend).config,
            max_time=max_time,
            mode=mode,
            failure_policy=failure_policy,
            max_jobs=max_jobs,
        )
        seed = new_id()
        port = RemoteSessionPort(self, _wire.session_id_from_seed(self._token_sha256, seed), backend)
        body: dict[str, object] = {"id_seed": seed, "backend": backend, "max_ttl": terms.max_time, "mode": mode}
        if terms.failure_policy != "continue":
            body["failure_policy"] = terms.failure_policy
        if terms.max_jobs is not None:
            body["max_jobs"] = terms.max_jobs
        try:
            self._to_create.send_nowait((port, body))
        except trio.WouldBlock:
            raise CapacityError(
                f"{self.MAX_CREATING} sessions are waiting to be created on {self.url}; wait for some first"
            ) from None
        return port

    async def _create_sessions(self) -> None:
        """Create sessions on the server one at a time, in the order they were opened.

        One at a time, so that the server sees them in that order (a capacity limit refuses the
        later one, as in process); each creation is one round trip.
        """
        async for port, body in self._creations:
            await port._create(body)

    def _close(self) -> None:
        """The connection is closing: fail the sessions that were never created; refuse new calls."""
        self._closed = True
        self._to_create.close()
        while True:
            try:
                port, _ = self._creations.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            port._fail(ServiceClosedError(f"the connection closed before session {port.session_id} was created"))

    async def session(self, session_id: str) -> Session:
        """A handle on an existing session of yours, by id."""
        document = await self._call("GET", f"/sessions/{_segment(session_id, 'session_id')}", expect=(200,))
        try:
            backend = str(document["backend_name"])
        except (KeyError, TypeError) as exc:
            raise _garbled("GET /sessions/{id}", exc) from exc
        return Session._from_port(self, RemoteSessionPort(self, session_id, backend, created=True))

    # -- jobs --------------------------------------------------------------------------------

    async def submit_job(
        self,
        backend: str,
        program_id: str,
        inputs: Any,
        options: dict[str, Any] | None = None,
        *,
        tags: Iterable[str] = (),
    ) -> RemoteJobPort:
        """Submit a job outside any session (job mode); `tags` label it (SPEC T1)."""
        self.backend(backend)
        return await self._submit({"program_id": program_id, "backend": backend}, inputs, options, tags)

    async def job(self, job_id: str) -> Job:
        """A handle on one of your jobs, by id."""
        document = await self._call("GET", f"/jobs/{_segment(job_id, 'job_id')}", expect=(200,))
        return Job(RemoteJobPort.from_document(self, document))

    async def _submit(
        self, body: dict[str, Any], inputs: Any, options: dict[str, Any] | None, tags: Iterable[str] = ()
    ) -> RemoteJobPort:
        """Check what the core would check, encode, send: a refused input is refused here, nothing sent."""
        check_program_id(body["program_id"])
        checked = check_options(options)
        checked_tags = check_tags(tags)
        if checked_tags:
            body["tags"] = list(checked_tags)
        body["params"] = _wire.encode(inputs)
        if checked:
            body["options"] = _wire.encode(checked)
        sent_at = dt.datetime.now(dt.UTC)
        try:
            document = await self._call("POST", "/jobs", json=body, expect=(201,))
        except OutcomeUnknownError as exc:
            raise OutcomeUnknownError(_look_for_job(str(exc), body, sent_at), node=exc.node) from exc
        return RemoteJobPort.from_document(self, document)

    # -- seeing what runs (SPEC V1, E1, U1, Q1) -------------------------------------------------

    async def sessions(
        self,
        *,
        backend: str | None = None,
        state: str | None = None,
        created_after: dt.datetime | None = None,
        created_before: dt.datetime | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Session]:
        """Your sessions on the server, open and closed, newest first (SPEC V1); read a page at a time."""
        filters = {"backend": backend, "state": state, "created_after": created_after, "created_before": created_before}
        async for document in self._listing("/sessions", "sessions", filters, limit):
            try:
                port = RemoteSessionPort(self, str(document["id"]), str(document["backend_name"]), created=True)
            except (KeyError, TypeError) as exc:
                raise _garbled("GET /sessions", exc) from exc
            yield Session._from_port(self, port)

    async def jobs(
        self,
        *,
        status: str | JobStatus | None = None,
        session_id: str | None = None,
        backend: str | None = None,
        created_after: dt.datetime | None = None,
        created_before: dt.datetime | None = None,
        tags: Iterable[str] = (),
        limit: int | None = None,
    ) -> AsyncIterator[Job]:
        """Your jobs on the server, newest first (SPEC V1); `tags`: only those with all of them (T1)."""
        filters: dict[str, Any] = {
            "status": status.value if isinstance(status, JobStatus) else status,
            "session_id": session_id,
            "backend": backend,
            "created_after": created_after,
            "created_before": created_before,
            "tags": list(check_tags(tags)),
        }
        async for document in self._listing("/jobs", "jobs", filters, limit):
            yield Job(RemoteJobPort.from_document(self, document))

    async def _listing(
        self, path: str, field: str, filters: Mapping[str, Any], limit: int | None
    ) -> AsyncIterator[dict[str, Any]]:
        """The documents of a listing, page after page, following each page's cursor."""
        if limit is not None:
            check_positive_int(limit, name="limit")
        params = {
            name: value.isoformat() if isinstance(value, dt.datetime) else value
            for name, value in filters.items()
            if value is not None and value != []
        }
        left, cursor = limit, None
        while left is None or left > 0:
            size = _PAGE if left is None else min(_PAGE, left)
            page = await self._call(
                "GET", path, params={**params, "limit": size, **({"cursor": cursor} if cursor else {})}, expect=(200,)
            )
            try:
                documents, cursor = list(page[field]), page["next"]
            except (KeyError, TypeError) as exc:
                raise _garbled(f"GET {path}", exc) from exc
            for document in documents:
                yield document
            left = None if left is None else left - len(documents)
            if cursor is None:
                return

    async def usage(
        self, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> dict[str, dict[str, float]]:
        """Your usage per backend over a window: ``{backend: {"jobs": n, "quantum_seconds": s}}`` (SPEC U1)."""
        params = {name: value.isoformat() for name, value in (("since", since), ("until", until)) if value is not None}
        document = await self._call("GET", "/usage", params=params, expect=(200,))
        try:
            return {
                name: {"jobs": int(entry["jobs"]), "quantum_seconds": float(entry["quantum_seconds"])}
                for name, entry in document["backends"].items()
            }
        except (KeyError, TypeError, AttributeError) as exc:
            raise _garbled("GET /usage", exc) from exc

    async def queue_info(self, backend: str) -> dict[str, int]:
        """``{"priority": n, "normal": m}`` (SPEC Q1): jobs of active sessions and batches, and jobs in the line."""
        self.backend(backend)
        document = await self._call("GET", f"/backends/{_segment(backend, 'backend')}/queue", expect=(200,))
        try:
            return {"priority": int(document["priority"]), "normal": int(document["normal"])}
        except (KeyError, TypeError) as exc:
            raise _garbled("GET /backends/{name}/queue", exc) from exc

    def events(self, *, session_id: str | None = None, backend: str | None = None) -> RemoteEvents:
        """Every event of yours from now, of one session or one backend or all (SPEC E1), over
        Server-Sent Events; it reconnects on its own, and ends when the server ends the stream
        (with several nodes, a stream of no one session goes on at the next node instead)."""
        params: dict[str, str] = {"current": "false"}
        if session_id is not None:
            params["session_id"] = check_id(session_id, name="session_id")
        if backend is not None:
            params["backend"] = self.backend(backend).name
        return self._events(params, what="events", endless=session_id is None)

    def _events(
        self,
        params: Mapping[str, str],
        *,
        what: str,
        before: Callable[[], Any] | None = None,
        endless: bool = False,
    ) -> RemoteEvents:
        """An event stream of ``GET /events`` with `params`, read by a task of the connection's.

        `endless`: the stream names no session or job, so only its node's shutting down ends it:
        with several nodes, it is resumed at the next.
        """
        self._check_open()
        assert self._nursery is not None, "a RemoteService is made by qmux.connect()"
        timeout = httpx.Timeout(self._timeout, read=self._long_poll + self._timeout)
        resume = endless and len(self._nodes) > 1
        extensions = {ENDLESS: True} if resume else None

        def connect(headers: dict[str, str]) -> AbstractAsyncContextManager[httpx.Response]:
            return self._client.stream(
                "GET", "/events", params=params, headers=headers, timeout=timeout, extensions=extensions
            )

        return RemoteEvents(
            self._nursery,
            connect,
            _error_of,
            tries=_EVENT_STREAM_TRIES,
            before=before,
            what=what,
            resume_at_end=resume,
        )

    # -- HTTP --------------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        params: Mapping[str, Any] | None = None,
        expect: tuple[int, ...],
        idempotent: bool = False,
        read_timeout: float | None = None,
    ) -> Any:
        """One request; the decoded JSON answer (``None`` if empty), or the qmux error it stands for."""
        response = await self._send(method, path, json=json, params=params, idempotent=idempotent, read=read_timeout)
        if response.status_code in expect:
            return response.json() if response.content else None
        raise _error_of(response)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool = False,
        read: float | None = None,
    ) -> httpx.Response:
        if self._closed:
            raise ServiceClosedError(f"the connection to {self.url} is closed; open a new one with qmux.connect()")
        timeout = httpx.Timeout(self._timeout, read=read) if read is not None else httpx.USE_CLIENT_DEFAULT
        try:
            response = await self._client.request(
                method,
                path,
                json=json,
                params=params,
                timeout=timeout,
                extensions={IDEMPOTENT: True} if idempotent else None,
            )
        except httpx.TransportError as exc:
            raise self._not_answered(method, path, exc) from exc
        except RuntimeError as exc:  # the client is closed
            raise ServiceClosedError(f"the connection to {self.url} is closed: {exc}") from exc
        self._note_pending(response.headers.get("qmux-pending-jobs"))
        return response

    def _not_answered(self, method: str, path: str, exc: httpx.TransportError) -> QmuxError:
        """The error of a request no node answered (`RetryTransport` tried what it could)."""
        if isinstance(exc, OutcomeUnknown):
            return OutcomeUnknownError(
                f"{method} {path} was sent to {exc.node}, whose answer never came ({exc.why}); it may have taken "
                "effect there, so it was not sent again",
                node=exc.node,
            )
        if isinstance(exc, NodesFailed) and len(exc.failures) > 1:
            tried = "; ".join(f"{node}: {why}" for node, why in exc.failures)
            return ServiceClosedError(f"no qmux node answered {method} {path}: {tried}")
        node, why = exc.failures[0] if isinstance(exc, NodesFailed) and exc.failures else (self.url, describe(exc))
        return ServiceClosedError(f"the qmux server at {node} did not answer {method} {path}: {why}")

    def _note_pending(self, header: str | None) -> None:
        if not header:
            return
        try:
            counts = json.loads(header)
        except ValueError:
            return
        if isinstance(counts, dict):
            for name, count in counts.items():
                if isinstance(count, int):
                    self._pending[name] = count

    def _pending_of(self, name: str) -> Callable[[], int]:
        return lambda: self._pending.get(name, 0)

    def _check_open(self) -> None:
        if self._closed:
            raise ServiceClosedError(f"the connection to {self.url} is closed; open a new one with qmux.connect()")

    def __repr__(self) -> str:
        return f"<qmux.RemoteService {self.url}>"


@final
class RemoteSessionPort:
    """A session on the server, as a `Session` handle talks to it (the `SessionPort` protocol)."""

    def __init__(self, service: RemoteService, session_id: str, backend_name: str, *, created: bool = False) -> None:
        self.session_id = session_id
        self.backend_name = backend_name
        self._service = service
        self._path_id = _segment(session_id, "session_id")
        self._ready = trio.Event()
        self._error: QmuxError | None = None
        if created:
            self._ready.set()

    async def _create(self, body: dict[str, Any]) -> None:
        """The background creation: its outcome is what every later call waits for first."""
        created = False
        try:
            document = await self._service._call("POST", "/sessions", json=body, expect=(200, 201), idempotent=True)
            if not isinstance(document, dict) or document.get("id") != self.session_id:
                raise QmuxError(
                    f"the server opened session {self.session_id} under another id "
                    f"({document.get('id') if isinstance(document, dict) else document!r}); is it an older qmux?"
                )
            created = True
        except QmuxError as exc:
            self._error = exc
            _log.debug("remote.session_refused", session_id=self.session_id, error=str(exc))
        except Exception as exc:  # a bug, or a garbled answer: this session's, not the connection's
            self._error = QmuxError(f"session {self.session_id} could not be created: {type(exc).__name__}: {exc}")
            _log.error("remote.session_create_failed", session_id=self.session_id, exc_info=exc)
        finally:
            if not created and self._error is None:  # cancelled: the connection closed first
                self._error = ServiceClosedError(f"the connection closed before session {self.session_id} was created")
            self._ready.set()

    def _fail(self, error: QmuxError) -> None:
        self._error = error
        self._ready.set()

    async def _created(self) -> None:
        await self._ready.wait()
        if self._error is not None:
            raise self._error.with_traceback(None)

    async def submit(
        self, program_id: str, inputs: Any, options: dict[str, Any] | None = None, tags: Iterable[str] = ()
    ) -> RemoteJobPort:
        await self._created()
        body = {"program_id": program_id, "backend": self.backend_name, "session_id": self.session_id}
        return await self._service._submit(body, inputs, options, tags)

    def subscribe(self) -> RemoteEvents:
        """Its events (SPEC E1): its state now, then every change, until it has closed and its jobs ended."""
        return self._service._events(
            {"session_id": self.session_id}, what=f"the events of session {self.session_id}", before=self._created
        )

    async def close(self) -> None:
        await self._ready.wait()
        if self._error is not None:
            return  # it never existed on the server: nothing to close
        await self._service._call(
            "PATCH", f"/sessions/{self._path_id}", json={"accepting_jobs": False}, expect=(204,), idempotent=True
        )

    async def cancel(self) -> None:
        await self._ready.wait()
        if self._error is not None:
            return
        await self._service._call("DELETE", f"/sessions/{self._path_id}/close", expect=(204,))

    async def status(self) -> str:
        document = await self._document()
        try:
            return status_text(SessionState(document["state"]), bool(document["accepting_jobs"]))
        except (KeyError, ValueError) as exc:
            raise _garbled("GET /sessions/{id}", exc) from exc

    async def details(self) -> dict[str, Any]:
        document = await self._document()
        return {_DETAIL_OF_FIELD.get(key, key): value for key, value in document.items()}

    async def _document(self) -> dict[str, Any]:
        await self._created()
        document = await self._service._call("GET", f"/sessions/{self._path_id}", expect=(200,))
        if not isinstance(document, dict):
            raise _garbled("GET /sessions/{id}", TypeError(type(document).__name__))
        return document

    def __repr__(self) -> str:
        return f"<qmux.RemoteSessionPort {self.session_id} backend={self.backend_name!r}>"


@final
class RemoteJobPort:
    """A job on the server, as a `Job` handle talks to it (the `JobPort` protocol)."""

    def __init__(
        self, service: RemoteService, *, job_id: str, session_id: str | None, program_id: str, backend_name: str
    ) -> None:
        self.job_id = job_id
        self.session_id = session_id
        self.program_id = program_id
        self.backend_name = backend_name
        self._service = service
        self._path_id = _segment(job_id, "job_id")
        self._outcome: tuple[Any, JobError | None] | None = None

    @classmethod
    def from_document(cls, service: RemoteService, document: Any) -> RemoteJobPort:
        try:
            session_id = document["session_id"]
            return cls(
                service,
                job_id=str(document["id"]),
                session_id=str(session_id) if session_id is not None else None,
                program_id=str(document["program"]["id"]),
                backend_name=str(document["backend"]),
            )
        except (KeyError, TypeError) as exc:
            raise _garbled("a job document", exc) from exc

    async def get_status(self) -> str:
        document = await self._service._call("GET", f"/jobs/{self._path_id}", expect=(200,))
        try:
            return _STATUS_OF_STATE[document["state"]["status"]].value
        except (KeyError, TypeError) as exc:
            raise _garbled("GET /jobs/{id}", exc) from exc

    async def get_result(self) -> Any:
        """Long-poll the server until the job ends; then its result, or its error raised."""
        while self._outcome is None:
            wait = self._service._long_poll
            response = await self._service._send(
                "GET", f"/jobs/{self._path_id}/results", params={"wait": wait}, read=wait + self._service._timeout
            )
            if response.status_code == 200:
                self._outcome = (_wire.decode(response.json()), None)
            elif response.status_code != 202:  # 202: not finished yet; ask again
                refusal = _error_of(response)
                if not isinstance(refusal, JobError):
                    raise refusal
                self._outcome = (None, refusal)
        value, failure = self._outcome
        if failure is not None:
            raise failure.with_traceback(None)
        return value

    async def cancel(self) -> None:
        await self._service._call("POST", f"/jobs/{self._path_id}/cancel", expect=(204,), idempotent=True)

    async def get_metrics(self) -> dict[str, Any]:
        metrics = await self._service._call("GET", f"/jobs/{self._path_id}/metrics", expect=(200,))
        if not isinstance(metrics, dict):
            raise _garbled("GET /jobs/{id}/metrics", TypeError(f"not an object: {metrics!r}"))
        return metrics

    async def get_queue_position(self) -> int | None:
        document = await self._service._call("GET", f"/jobs/{self._path_id}/queue", expect=(200,))
        try:
            position = document["position"]
            return None if position is None else int(position)
        except (KeyError, TypeError) as exc:
            raise _garbled("GET /jobs/{id}/queue", exc) from exc

    async def get_tags(self) -> tuple[str, ...]:
        document = await self._service._call("GET", f"/jobs/{self._path_id}", expect=(200,))
        try:
            return tuple(str(tag) for tag in document["tags"])
        except (KeyError, TypeError) as exc:
            raise _garbled("GET /jobs/{id}", exc) from exc

    async def set_tags(self, tags: tuple[str, ...]) -> None:
        await self._service._call("PUT", f"/jobs/{self._path_id}/tags", json={"tags": list(tags)}, expect=(204,))

    def subscribe(self) -> RemoteEvents:
        """Its status now, then every transition until it ends (SPEC E1)."""
        return self._service._events({"job_id": self.job_id}, what=f"the events of job {self.job_id}")

    def __repr__(self) -> str:
        return f"<qmux.RemoteJobPort {self.job_id}>"


def _segment(value: object, name: str) -> str:
    """An id checked as the core checks it, quoted as one path segment."""
    return urllib.parse.quote(check_id(value, name=name), safe="")


def _error_of(response: httpx.Response) -> QmuxError:
    try:
        body = response.json()
    except ValueError:
        body = None
    return _wire.error_from_wire(response.status_code, body)


def _garbled(what: str, exc: BaseException) -> QmuxError:
    return QmuxError(f"the server's answer to {what} is not what qmux expects ({type(exc).__name__}: {exc})")


def _look_for_job(what: str, body: Mapping[str, Any], sent_at: dt.datetime) -> str:
    """The message of a submission whose outcome is unknown: what happened, and how to look."""
    since = (sent_at - _CLOCK_MARGIN).replace(microsecond=0).isoformat()
    session_id, backend, tags = body.get("session_id"), body["backend"], body.get("tags") or []
    where = f"session_id={session_id!r}" if session_id is not None else f"backend={backend!r}"
    flags = f"--session {session_id}" if session_id is not None else f"--backend {backend}"
    tagged = f", tags={tags!r}" if tags else ""
    flags += "".join(f" --tag {tag}" for tag in tags)
    return (
        f"the submission of a {body['program_id']!r} job may or may not have been accepted: {what}. Look before "
        f"submitting again: service.jobs({where}{tagged}, created_after=datetime.fromisoformat({since!r})) lists it "
        f"if it was (or: qmux jobs {flags} --since {since}); a tag of your own on each submission tells it apart"
    )


def _ssl_context(verify: object) -> ssl.SSLContext:
    """The context that verifies an https server: `connect`'s ``verify``, checked."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is True:
        return _default_ssl_context()
    if isinstance(verify, (str, os.PathLike)) and not isinstance(verify, bool):
        try:
            return ssl.create_default_context(cafile=os.fspath(verify))
        except (OSError, ssl.SSLError) as exc:
            raise InvalidInputError(f"verify={verify!r} is not a readable PEM file of CA certificates: {exc}") from None
    raise InvalidInputError(
        f"verify={verify!r} must be True (the public CAs), the path of a PEM file of the CA(s) to trust, or an "
        "ssl.SSLContext; certificates are always verified"
    )


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context (certifi's CAs), made once: loading the bundle costs ~30 ms a client."""
    return httpx.create_ssl_context()


def _version() -> str:
    from .._version import __version__

    return __version__
