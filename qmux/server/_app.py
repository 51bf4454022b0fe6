"""The ASGI application: one request's way from bytes to a handler and back.

For each request, in order: find the route (404, 405), authenticate (401), admit it under the
in-flight limit (503), read the body within its limit (413), decode and validate body and query
against the route's schemas (400, 415, 422), run the handler, and turn any qmux error it raises
into its status and JSON body. A refused request changes nothing. Every request is logged once,
as an ``http.request`` event.

It is a plain ASGI callable: hypercorn serves it on Trio, and ``httpx.ASGITransport`` calls it
in memory in tests.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any, Final, final

import msgspec
import structlog
import trio

from .._core import AuthenticationError, CapacityError, InvalidInputError, QmuxError, Service
from ._api import ROUTES, Api
from ._auth import Tenant, TokenAuth
from ._config import ServerSettings
from ._http import (
    HttpError,
    Receive,
    Reply,
    Request,
    Route,
    Scope,
    Send,
    check_content_length,
    find_route,
    read_body,
)
from ._openapi import PENDING_JOBS_HEADER

__all__ = ["QmuxApp", "create_app"]

_log = structlog.get_logger("qmux.server")
_MAX_PENDING_HEADER: Final = 4096


def create_app(service: Service, tenants: Iterable[Tenant], settings: ServerSettings | None = None) -> QmuxApp:
    """The HTTP API over `service`, for `tenants`. Serve it with hypercorn, or test it in memory."""
    return QmuxApp(Api(service, settings or ServerSettings()), TokenAuth(tenants))


@final
class QmuxApp:
    """An ASGI 3 application (``http`` and ``lifespan`` scopes)."""

    def __init__(self, api: Api, auth: TokenAuth, routes: Sequence[Route] = ROUTES) -> None:
        self.api = api
        self.routes = tuple(routes)
        self._auth = auth
        self._in_flight = 0

    def begin_shutdown(self) -> None:
        """Refuse new sessions and jobs (503) and answer waiting long polls now; reads still work."""
        self.api.begin_shutdown()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets and the like: not served
            return
        started = trio.current_time()
        route: Route | None = None
        tenant: str | None = None
        try:
            route, params = self._route(scope)
            tenant = self._authenticate(route, scope)
            reply = await self._admit(route, params, tenant, scope, receive)
        except HttpError as refusal:
            reply = refusal.reply()
        await self._send(send, scope, reply, tenant)
        _log.info(
            "http.request",
            method=scope["method"],
            path=scope["path"],
            route=route.operation_id if route else None,
            status=reply.status,
            tenant=tenant,
            duration_ms=round((trio.current_time() - started) * 1000, 3),
        )

    # -- the steps ---------------------------------------------------------------------------

    def _route(self, scope: Scope) -> tuple[Route, dict[str, str]]:
        return find_route(self.routes, scope["method"], scope["path"], unknown="see /openapi.json")

    def _authenticate(self, route: Route, scope: Scope) -> str | None:
        if route.public:
            return None
        tenant = self._auth.tenant(_header(scope, b"authorization"))
        if tenant is None:
            raise HttpError(
                401,
                AuthenticationError("this request needs Authorization: Bearer <token> with a token the server knows"),
                code="unauthorized",
                headers={"www-authenticate": 'Bearer realm="qmux"'},
            )
        return tenant

    async def _admit(
        self, route: Route, params: dict[str, str], tenant: str | None, scope: Scope, receive: Receive
    ) -> Reply:
        if self._in_flight >= self.api.settings.max_in_flight:
            raise HttpError(
                503,
                CapacityError(f"the server is handling {self._in_flight} requests, its limit; retry shortly"),
                code="busy",
                headers={"retry-after": "1"},
            )
        self._in_flight += 1
        try:
            request = await self._request(route, params, tenant, scope, receive)
            try:
                return await route.handler(self.api, request)
            except QmuxError as error:
                return Reply.error(error)
            except Exception as exc:  # a bug: log it whole, tell the client only that it happened
                _log.error("http.error", route=route.operation_id, exc_info=exc)
                return Reply.error(QmuxError("the server failed to handle this request; see its log"))
        finally:
            self._in_flight -= 1

    async def _request(
        self, route: Route, params: dict[str, str], tenant: str | None, scope: Scope, receive: Receive
    ) -> Request:
        limit = self.api.settings.max_body_bytes
        check_content_length(_header(scope, b"content-length"), limit)
        raw = await read_body(receive, limit)
        body: Any = None
        if route.body is not None:
            content_type = (_header(scope, b"content-type") or "application/json").split(";")[0].strip().lower()
            if content_type != "application/json":
                raise HttpError(
                    415,
                    InvalidInputError(f"the body must be application/json, not {content_type}"),
                    code="unsupported_media_type",
                )
            if not raw.strip():
                raise HttpError(400, InvalidInputError("this request needs a JSON body"), code="malformed_json")
            body = _decode_body(raw, route.body)
        elif raw.strip():
            raise HttpError(
                400, InvalidInputError(f"{route.method} {route.path} takes no body"), code="unexpected_body"
            )
        query = _decode_query(scope, route)
        return Request(tenant=tenant or "", params=params, query=query, body=body)

    async def _send(self, send: Send, scope: Scope, reply: Reply, tenant: str | None) -> None:
        headers = [(b"cache-control", b"no-store")]
        headers += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers.items()]
        headers.append((b"content-length", str(len(reply.body)).encode()))
        if tenant is not None:
            pending = json.dumps(self.api.pending_jobs(), separators=(",", ":"), ensure_ascii=True)
            if len(pending) <= _MAX_PENDING_HEADER:
                headers.append((PENDING_JOBS_HEADER.encode(), pending.encode("ascii")))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else reply.body
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _decode_body(raw: bytes, kind: type[msgspec.Struct]) -> Any:
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise HttpError(422, InvalidInputError(f"invalid body: {exc}"), code="invalid_body") from exc
    except msgspec.DecodeError as exc:
        raise HttpError(400, InvalidInputError(f"the body is not valid JSON: {exc}"), code="malformed_json") from exc


def _decode_query(scope: Scope, route: Route) -> Any:
    text = bytes(scope.get("query_string", b"")).decode("latin-1")
    pairs = urllib.parse.parse_qsl(text, keep_blank_values=True)
    if route.query is None:
        if pairs:
            raise HttpError(
                422,
                InvalidInputError(f"{route.method} {route.path} takes no query parameters; got {pairs[0][0]!r}"),
                code="invalid_query",
            )
        return None
    values: dict[str, str] = {}
    for key, value in pairs:
        if key in values:
            raise HttpError(422, InvalidInputError(f"query parameter {key!r} is given twice"), code="invalid_query")
        values[key] = value
    try:
        return msgspec.convert(values, route.query, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc).replace("Object contains unknown field", "unknown query parameter")
        raise HttpError(422, InvalidInputError(f"invalid query: {message}"), code="invalid_query") from exc


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start or stop: the service's life is its owner's (``serve`` or a test)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
