"""The one request pipeline: route, authenticate, admit, read within limits, decode, handle, encode, log.

`HttpApp` is a plain ASGI 3 callable (hypercorn serves it on Trio; ``httpx.ASGITransport`` calls
it in memory in tests) that serves one or more `FrontDoor`s over one `ServiceView`. A front
door is an API: its routes, its authenticator, its dialect. For each request, in order:

1. pick the front door that owns the path, and find the route (404, 405);
2. authenticate, unless the route is public (401);
3. admit it under the server's in-flight limit, shared by every front door (503 ``busy``), unless
   the route is a probe that must answer under load (`Route.bounded`);
4. read the body within its limit (413), decode body and query against the route's schemas
   (400, 415, 422);
5. run the handler: a qmux error it raises answers with its class's status, a refusal
   (`HttpError`) with its own, anything else is a bug: logged whole, answered 500 with a body
   that says only that it happened;
6. send the whole reply, or a streaming reply's chunks as they come (`Reply.stream`, Server-Sent
   Events) until they end or the client disconnects; log the request once, as an ``http.request``
   event, and tell the app's observers (`RequestObserver`: what metrics count) what the log line says.

A streaming reply is counted in flight only while its handler runs, not while it streams: a
stream is long by nature and would hold a slot meant for short requests. What bounds streams is
what they hold: each holds one event subscription, and the service bounds those per tenant
(``ServiceSettings.max_subscribers_per_owner``).

A refused request changes nothing. Every answer, refusals included, goes through the front
door's `Dialect`, in one code path, so both APIs refuse alike.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Final, final

import structlog
import trio
from attrs import define, field, frozen

from .._core import AuthenticationError, QmuxError
from ._decoding import decode_body, decode_query
from ._dialect import Dialect
from ._limits import InFlight, check_content_length, read_body
from ._messages import HttpError, Receive, Reply, Request, Scope, Send, header
from ._routing import Route, find_route
from ._view import ServiceView

__all__ = ["Answered", "FrontDoor", "HttpApp", "RequestObserver"]

_log = structlog.get_logger("qmux.http")
#: the in-flight count a route that is not `Route.bounded` runs under: none
_UNBOUNDED: Final = contextlib.nullcontext()


@frozen
class Answered:
    """One request, answered: what its ``http.request`` log line says, for the app's observers."""

    #: the front door's dialect name (``native``, ``ibm``, ...)
    api: str
    #: the route's operation id; ``None`` for a path that is no route
    route: str | None
    status: int
    #: who asked; ``None`` before authentication or on a public route
    tenant: str | None
    seconds: float


#: told of every request once it is answered; called inline, so it must be cheap and must not raise
RequestObserver = Callable[[Answered], None]


def _every_path(path: str) -> bool:
    return True


@frozen
class FrontDoor:
    """One API an app serves: its routes, who may call them, how it speaks."""

    routes: tuple[Route, ...]
    #: what each route's handler is called with (the API's handler object)
    handlers: object
    #: ``Authorization`` header value -> the tenant it names, or ``None``
    authenticate: Callable[[str | None], str | None]
    dialect: Dialect
    #: whether a path is this front door's; an app asks its doors in order, and its last takes the rest
    owns: Callable[[str], bool] = _every_path
    #: headers added to every answer to an authenticated request (the native API's queue depths)
    answer_headers: Callable[[], Mapping[str, str]] | None = None


@final
@define(eq=False)
class HttpApp:
    """An ASGI 3 application (``http`` and ``lifespan`` scopes) serving its front doors."""

    doors: tuple[FrontDoor, ...]
    view: ServiceView
    in_flight: InFlight
    #: told of every answered request (`observe` adds one); shared with the apps `mount` makes
    observers: list[RequestObserver] = field(factory=list)

    @classmethod
    def serving(cls, door: FrontDoor, view: ServiceView) -> HttpApp:
        """An app with one front door, bounded by `view`'s limits."""
        return cls((door,), view, InFlight(view.limits.max_in_flight))

    def mount(self, door: FrontDoor) -> HttpApp:
        """This app with `door` in front: `door` answers the paths it owns, this app's doors the rest.

        The two share the view (tenancy, shutdown), the in-flight limit and the observers: one
        server, one bound, one count.
        """
        return HttpApp((door, *self.doors), self.view, self.in_flight, self.observers)

    def observe(self, observer: RequestObserver) -> None:
        """Tell `observer` of every request this app (and any app mounted over it) answers."""
        self.observers.append(observer)

    @property
    def routes(self) -> tuple[Route, ...]:
        """Every route served, front door by front door."""
        return tuple(route for door in self.doors for route in door.routes)

    @property
    def api(self) -> ServiceView:
        """The view the handlers share (``QmuxApp.api`` before the pipeline was shared)."""
        return self.view

    def begin_shutdown(self) -> None:
        """Refuse new sessions and jobs (503) and answer waiting long polls now; reads still work."""
        self.view.begin_shutdown()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets and the like: not served
            return
        started = trio.current_time()
        door = self._door(scope["path"])
        trace_id = secrets.token_hex(8) if door.dialect.trace_header is not None else None
        route, tenant, reply = await self._answer(door, scope, receive)
        await _send(send, scope, door, reply, tenant, trace_id)
        if reply.stream is not None:
            await _stream(reply.stream, send, receive, head=scope["method"] == "HEAD", keepalive=reply.keepalive)
        seconds = trio.current_time() - started
        operation = route.operation_id if route else None
        log = _log.debug if route is not None and route.quiet and reply.status < 300 else _log.info
        log(
            "http.request",
            api=door.dialect.name,
            method=scope["method"],
            path=scope["path"],
            route=operation,
            status=reply.status,
            tenant=tenant,
            duration_ms=round(seconds * 1000, 3),
            **({"trace_id": trace_id} if trace_id is not None else {}),
        )
        if self.observers:
            answered = Answered(door.dialect.name, operation, reply.status, tenant, seconds)
            for observer in self.observers:
                observer(answered)

    def _door(self, path: str) -> FrontDoor:
        for door in self.doors[:-1]:
            if door.owns(path):
                return door
        return self.doors[-1]

    async def _answer(self, door: FrontDoor, scope: Scope, receive: Receive) -> tuple[Route | None, str | None, Reply]:
        """The reply to one request, with the route and the tenant it was found to be for."""
        route: Route | None = None
        tenant: str | None = None
        try:
            route, params = find_route(door.routes, scope["method"], scope["path"], unknown=door.dialect.unknown_route)
            tenant = _authenticate(door, route, scope)
            with self.in_flight if route.bounded else _UNBOUNDED:
                request = await self._read(door.dialect, route, params, tenant, scope, receive)
                reply = await route.handler(door.handlers, request)
        except HttpError as refusal:
            reply = door.dialect.refusal(refusal)
        except QmuxError as error:
            reply = door.dialect.error(error)
        except Exception as exc:  # a bug: log it whole, tell the client only that it happened
            _log.error("http.error", api=door.dialect.name, route=route.operation_id if route else None, exc_info=exc)
            reply = door.dialect.error(QmuxError("the server failed to handle this request; see its log"))
        return route, tenant, reply

    async def _read(
        self, dialect: Dialect, route: Route, params: dict[str, str], tenant: str | None, scope: Scope, receive: Receive
    ) -> Request:
        limit = self.view.limits.max_body_bytes
        check_content_length(header(scope, b"content-length"), limit)
        raw = await read_body(receive, limit)
        body = decode_body(raw, header(scope, b"content-type"), route, dialect)
        query = decode_query(bytes(scope.get("query_string", b"")), route, dialect)
        return Request(tenant=tenant or "", params=params, query=query, body=body, raw_headers=scope["headers"])


def _authenticate(door: FrontDoor, route: Route, scope: Scope) -> str | None:
    if route.public:
        return None
    tenant = door.authenticate(header(scope, b"authorization"))
    if tenant is None:
        raise HttpError(
            401,
            AuthenticationError(door.dialect.unauthorized),
            code="unauthorized",
            headers={"www-authenticate": 'Bearer realm="qmux"'},
        )
    return tenant


async def _send(
    send: Send, scope: Scope, door: FrontDoor, reply: Reply, tenant: str | None, trace_id: str | None
) -> None:
    headers = [(b"cache-control", b"no-store")]
    if trace_id is not None and door.dialect.trace_header is not None:
        headers.append((door.dialect.trace_header.encode("latin-1"), trace_id.encode("ascii")))
    headers += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers.items()]
    if tenant is not None and door.answer_headers is not None:
        headers += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in door.answer_headers().items()]
    if reply.stream is None:
        headers.append((b"content-length", str(len(reply.body)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    if reply.stream is None:
        body = b"" if scope["method"] == "HEAD" else reply.body
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def _stream(
    chunks: AsyncIterator[bytes],
    send: Send,
    receive: Receive,
    *,
    head: bool,
    keepalive: tuple[float, bytes] | None,
) -> None:
    """Send `chunks` as they come until they end or the client disconnects; close them either way.

    The chunks are never read under a timeout (cancelling a read could lose what it had taken):
    keepalives come from a task of their own, and one lock keeps each chunk whole on the wire.
    """
    disconnected = False
    sending = trio.Lock()

    async def body(chunk: bytes) -> None:
        async with sending:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def watch(scope: trio.CancelScope) -> None:
        nonlocal disconnected
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected = True
        scope.cancel()

    async def beat(seconds: float, chunk: bytes) -> None:
        while True:
            await trio.sleep(seconds)
            await body(chunk)

    try:
        if not head:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch, nursery.cancel_scope)
                if keepalive is not None:
                    nursery.start_soon(beat, *keepalive)
                async for chunk in chunks:
                    await body(chunk)
                nursery.cancel_scope.cancel()
    except Exception as exc:  # the response has begun: a bug can only end it early
        _log.error("http.stream_error", exc_info=exc)
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    if not disconnected:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start or stop: the service's life is its owner's (``serve`` or a test)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
