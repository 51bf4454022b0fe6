"""The one request pipeline: route, authenticate, admit, read within limits, decode, handle, encode, log.

`HttpApp` is a plain ASGI 3 callable (hypercorn serves it on Trio; ``httpx.ASGITransport`` calls
it in memory in tests) that serves one or more `FrontDoor`s over one `ServiceView`. A front
door is an API: its routes, its authenticator, its dialect. For each request, in order:

1. pick the front door that owns the path, and find the route (404, 405);
2. authenticate, unless the route is public (401); an address that fails too often is
   answered 429 before its credential is checked (`AuthThrottle`);
3. admit it under its tenant's rate (429) and in-flight limit (503), and the server's in-flight
   limit, shared by every front door (503) (`Admission`), unless the route is a probe that must
   answer under load (`Route.bounded` false);
4. read the body within its size (413) and time (408) limits, check its JSON's depth and decode
   body and query against the route's schemas (400, 415, 422);
5. run the handler (in a cluster, an app with `Peers`: on the node that holds what the request
   names, or on every node, merged, as its route's `Locate` says; `qmux._http._relay`): a qmux
   error it raises answers with its class's status, a refusal
   (`HttpError`) with its own, anything else is a bug: logged whole, answered 500 with a body
   that says only that it happened. A GET whose client goes away is cancelled at once (a long
   poll gives its slot back when its client leaves, not when its wait ends);
6. send the whole reply, or a streaming reply's chunks as they come (`Reply.stream`, Server-Sent
   Events) until they end or the client disconnects; log the request once, as an ``http.request``
   event (a 429 at debug level: who is being throttled is logged apart, at most every ten
   seconds), and tell the app's observers (`RequestObserver`: what metrics count) what it says.
   A reply relayed from another node is sent with that node's headers as they are.

A streaming reply is counted in flight only while its handler runs, not while it streams: a
stream is long by nature and would hold a slot meant for short requests. What bounds streams is
what they hold: each holds one event subscription, and the service bounds those per tenant
(``ServiceSettings.max_subscribers_per_owner``).

A refused request changes nothing. Every answer, refusals included, goes through the front
door's `Dialect`, in one code path, so both APIs refuse alike. A WebSocket handshake is refused
with a 403 (nothing here speaks WebSocket).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Final, final

import httpx
import outcome
import structlog
import trio
from attrs import define, field, frozen

from .._core import AuthenticationError, InvalidInputError, QmuxError
from ._admission import Admission, AuthThrottle, address_key
from ._decoding import decode_body, decode_query
from ._dialect import Dialect
from ._forwarding import Peers
from ._limits import check_content_length, read_body
from ._messages import HttpError, Producer, Receive, Reply, Request, Scope, Send, capture, header
from ._relay import Relay
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

#: the status logged for a request whose client went away before its answer (nginx's word for it)
CLIENT_GONE: Final = 499
#: a 304 has no body, and its Content-Length would be the 200's (RFC 9110): it is sent without one
_NOT_MODIFIED: Final = 304
#: refused by a rate or the auth throttle: logged at debug level (a flood must not flood the log);
#: `Admission` and `AuthThrottle` log who is refused, at most every few seconds
_THROTTLED: Final = 429


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
    #: public routes that check a credential themselves (IAM's token call): a 4xx answer from
    #: one counts as a failed authentication of the client's address
    credential_paths: frozenset[str] = frozenset()


@final
@define(eq=False)
class HttpApp:
    """An ASGI 3 application (``http``, ``websocket`` and ``lifespan`` scopes) serving its front doors."""

    doors: tuple[FrontDoor, ...]
    view: ServiceView
    admission: Admission
    throttle: AuthThrottle = field()
    #: told of every answered request (`observe` adds one); shared with the apps `mount` makes
    observers: list[RequestObserver] = field(factory=list)
    #: in a cluster: how requests reach the node that holds what they name (`serving` makes it
    #: from `Peers`); none: one node, every request answered here
    relay: Relay | None = None

    @throttle.default
    def _throttle(self) -> AuthThrottle:
        limits = self.view.limits
        return AuthThrottle(limits.failed_auth_per_minute, limits.failed_auth_burst)

    @classmethod
    def serving(
        cls,
        door: FrontDoor,
        view: ServiceView,
        *,
        peers: Peers | None = None,
        peer_transport: httpx.AsyncBaseTransport | None = None,
    ) -> HttpApp:
        """An app with one front door, bounded by `view`'s limits; with `peers`, one node of a
        cluster (`peer_transport`: how it reaches the others, default the network)."""
        relay = None if peers is None else Relay.of(peers, view, transport=peer_transport)
        return cls((door,), view, Admission(view.limits), relay=relay)

    def mount(self, door: FrontDoor) -> HttpApp:
        """This app with `door` in front: `door` answers the paths it owns, this app's doors the rest.

        The two share the view (tenancy, shutdown), the admission limits, the throttle and the
        observers: one server, one bound, one count.
        """
        return HttpApp((door, *self.doors), self.view, self.admission, self.throttle, self.observers, self.relay)

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

    async def aclose(self) -> None:
        """Close the connections to the other nodes of a cluster (at the server's lifespan shutdown)."""
        if self.relay is not None:
            await self.relay.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send, self.aclose)
        elif kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._refuse_websocket(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = trio.current_time()
        door = self._door(scope["path"])
        trace_id = secrets.token_hex(8) if door.dialect.trace_header is not None else None
        route, tenant, reply = await self._answer(door, scope, receive)
        if reply is not None:
            await _send(send, scope, door, reply, tenant, trace_id)
            if reply.stream is not None:
                await _stream(reply.stream, send, receive, head=scope["method"] == "HEAD", keepalive=reply.keepalive)
        status = reply.status if reply is not None else CLIENT_GONE
        seconds = trio.current_time() - started
        operation = route.operation_id if route else None
        quiet = (route is not None and route.quiet and status < 300) or status == _THROTTLED
        log = _log.debug if quiet else _log.info
        more: dict[str, str] = {}
        if reply is not None and reply.via is not None:
            more["forwarded_to"] = reply.via
            trace_id = reply.headers.get(door.dialect.trace_header.lower()) if door.dialect.trace_header else None
        if trace_id is not None:
            more["trace_id"] = trace_id
        log(
            "http.request",
            api=door.dialect.name,
            method=scope["method"],
            path=scope["path"],
            route=operation,
            status=status,
            tenant=tenant,
            duration_ms=round(seconds * 1000, 3),
            **more,
        )
        if self.observers:
            answered = Answered(door.dialect.name, operation, status, tenant, seconds)
            for observer in self.observers:
                observer(answered)

    def _door(self, path: str) -> FrontDoor:
        for door in self.doors[:-1]:
            if door.owns(path):
                return door
        return self.doors[-1]

    async def _answer(
        self, door: FrontDoor, scope: Scope, receive: Receive
    ) -> tuple[Route | None, str | None, Reply | None]:
        """The reply to one request (``None``: its client went away), with the route and tenant it was for."""
        route: Route | None = None
        tenant: str | None = None
        reply: Reply | None
        address = address_key(scope.get("client"))
        try:
            route, params = find_route(door.routes, scope["method"], scope["path"], unknown=door.dialect.unknown_route)
            tenant = self._authenticate(door, route, scope, address)
            with self.admission.admit(tenant) if route.bounded else _UNBOUNDED:
                request, raw = await self._read(door.dialect, route, params, tenant, scope, receive)
                call: Awaitable[Reply]
                if self.relay is not None and route.locate is not None:
                    call = self.relay.answer(door.handlers, route, request, raw, scope)
                else:
                    call = route.handler(door.handlers, request)
                reply = await _handle(route.method, call, receive)
        except HttpError as refusal:
            reply = door.dialect.refusal(refusal)
        except QmuxError as error:
            reply = door.dialect.error(error)
        except Exception as exc:  # a bug: log it whole, tell the client only that it happened
            _log.error("http.error", api=door.dialect.name, route=route.operation_id if route else None, exc_info=exc)
            reply = door.dialect.error(QmuxError("the server failed to handle this request; see its log"))
        refused = reply is not None and 400 <= reply.status < 500
        if refused and route is not None and route.path in door.credential_paths:
            self.throttle.failed(address)
        return route, tenant, reply

    def _authenticate(self, door: FrontDoor, route: Route, scope: Scope, address: str | None) -> str | None:
        """The tenant the request's credential names (``None`` on a public route); else 429 or 401."""
        credential = header(scope, b"authorization")
        self.throttle.check(address, credential)
        if route.public:
            return None
        tenant = door.authenticate(credential)
        if tenant is None:
            self.throttle.failed(address)
            raise HttpError(
                401,
                AuthenticationError(door.dialect.unauthorized),
                code="unauthorized",
                headers={"www-authenticate": 'Bearer realm="qmux"'},
            )
        self.throttle.succeeded(address, credential)
        return tenant

    async def _read(
        self, dialect: Dialect, route: Route, params: dict[str, str], tenant: str | None, scope: Scope, receive: Receive
    ) -> tuple[Request, bytes]:
        """The request as the handler gets it, and its body as it came (sent on as it is, in a cluster)."""
        limits = self.view.limits
        check_content_length(header(scope, b"content-length"), limits.max_body_bytes)
        raw = await read_body(receive, limits.max_body_bytes, limits.body_timeout)
        body = decode_body(raw, header(scope, b"content-type"), route, dialect)
        query = decode_query(bytes(scope.get("query_string", b"")), route, dialect)
        request = Request(
            tenant=tenant or "",
            params=params,
            query=query,
            body=body,
            body_size=len(raw),
            raw_headers=scope["headers"],
        )
        return request, raw

    async def _refuse_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a WebSocket handshake with a 403: with the front door's error body where the server
        lets an app answer a handshake with HTTP, else with ``websocket.close`` (the server's own 403)."""
        door = self._door(scope["path"])
        if (await receive())["type"] != "websocket.connect":
            return  # the client left before its handshake was read: nothing to refuse
        refusal = HttpError(
            403,
            InvalidInputError(f"{scope['path']} does not speak WebSocket; this server answers HTTP requests only"),
            code="websocket_refused",
        )
        reply = door.dialect.refusal(refusal)
        if "websocket.http.response" in scope.get("extensions", {}):
            headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers.items()]
            headers.append((b"content-length", str(len(reply.body)).encode()))
            await send({"type": "websocket.http.response.start", "status": reply.status, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": reply.body, "more_body": False})
        else:
            await send({"type": "websocket.close", "code": 1008})
        _log.info("http.request", api=door.dialect.name, method="GET", path=scope["path"], route=None, status=403)


async def _handle(method: str, call: Awaitable[Reply], receive: Receive) -> Reply | None:
    """Await the handler's `call` (or the relay's). A GET changes nothing, so it is cancelled as soon
    as its client goes away (``None``); anything else runs to its end, answered or not."""
    if method != "GET":
        return await call
    result: outcome.Outcome[Reply] | None = None
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_when_gone, receive, nursery.cancel_scope)
            result = await capture(call)
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # cancelled from outside (a server shutting down; in memory, the caller itself): raise the
        # `trio.Cancelled` bare, as the handler alone would have, so `except trio.Cancelled` still sees it
        cancelled, rest = group.split(trio.Cancelled)
        if rest is not None or cancelled is None:
            raise
        raise _first(cancelled) from None
    return None if result is None else result.unwrap()


def _first(group: BaseExceptionGroup[trio.Cancelled]) -> trio.Cancelled:
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


async def _cancel_when_gone(receive: Receive, scope: trio.CancelScope) -> None:
    """Cancel `scope` when the client disconnects. The body is read, so ASGI has nothing else to
    send; a server that sends something else anyway is not watched further."""
    if (await receive())["type"] == "http.disconnect":
        scope.cancel()


async def _send(
    send: Send, scope: Scope, door: FrontDoor, reply: Reply, tenant: str | None, trace_id: str | None
) -> None:
    # an answer is not to be stored unless its reply says how (the Jobs page's files are validated)
    headers = [] if "cache-control" in reply.headers else [(b"cache-control", b"no-store")]
    relayed = reply.via is not None  # another node's answer: its headers, as they are
    if trace_id is not None and door.dialect.trace_header is not None and not relayed:
        headers.append((door.dialect.trace_header.encode("latin-1"), trace_id.encode("ascii")))
    headers += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers.items()]
    if tenant is not None and door.answer_headers is not None and not relayed:
        headers += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in door.answer_headers().items()]
    if reply.stream is None and reply.status != _NOT_MODIFIED:
        headers.append((b"content-length", str(len(reply.body)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    if reply.stream is None:
        body = b"" if scope["method"] == "HEAD" else reply.body
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def _stream(
    chunks: AsyncIterator[bytes] | Producer,
    send: Send,
    receive: Receive,
    *,
    head: bool,
    keepalive: tuple[float, bytes] | None,
) -> None:
    """Send `chunks` as they come (or as a `Producer` writes them) until they end or the client
    disconnects; close them either way.

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
                if isinstance(chunks, Producer):
                    await chunks.produce(body)
                else:
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


async def _lifespan(receive: Receive, send: Send, close: Callable[[], Awaitable[None]]) -> None:
    """Nothing to start: the service's life is its owner's (``serve`` or a test); at shutdown, `close`."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await close()
            await send({"type": "lifespan.shutdown.complete"})
            return
