"""The ASGI side: IBM's routes as their own small app, and the app that serves it beside the native API.

`IbmApp` runs each request through the same steps as the native app (route, authenticate,
admit under the in-flight limit, read the body within its limit, decode, handle, turn qmux
errors into their status and ``{"error": {"message", "code"}}`` body), with three
differences that come from serving a client qmux does not control:

- authentication is IAM's: the bearer token is an access token from ``/identity/token``
  (or a tenant's own token), see `IamTokens`;
- bodies may be JSON or form-encoded (IAM's token call is a form), and unknown query
  parameters and body fields are ignored rather than refused;
- every answer carries an ``uber-trace-id`` header, as IBM's do: the client logs it with an
  error, and without it appends the raw JSON body to the error's message. The same id is
  in the request's log event;
- every request is logged as ``http.request`` with ``api="ibm"``, except the status polls of
  ``GET /jobs/{id}`` (ten a second per waiting client), which are logged at debug level.

`CompatApp` sends ``/experimental/...`` and ``/identity/token`` to the IBM app and everything
else to the native one; `mount_ibm` builds it over a native app, sharing its service, its
tenants and its shutdown.
"""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any, Final, final

import msgspec
import structlog
import trio

from .._core import AuthenticationError, InvalidInputError, QmuxError, Service, ServiceClosedError
from ..server._app import QmuxApp
from ..server._auth import Tenant
from ..server._http import (
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
from . import _codec
from ._api import API_PREFIX, IAM_PATH, ROUTES, IbmApi
from ._auth import IamTokens

__all__ = ["CompatApp", "IbmApp", "mount_ibm"]

_log = structlog.get_logger("qmux.ibm")
_POLL: Final = "ibm_get_job"
_FORM: Final = "application/x-www-form-urlencoded"


def mount_ibm(native: QmuxApp, service: Service, tenants: Iterable[Tenant], *, token_lifetime: int = 3600) -> CompatApp:
    """The native API over `service` with IBM's Runtime API beside it (``qmux serve --ibm-compat``).

    Imports qiskit and qiskit-ibm-runtime's JSON codec first, in the calling thread, and
    raises `QiskitNotInstalledError` if the ``ibm`` extra is missing.
    """
    _codec.require_ibm_runtime()
    api = IbmApi(service, native.api, IamTokens(tenants, lifetime=token_lifetime))
    return CompatApp(native, IbmApp(api))


@final
class CompatApp:
    """An ASGI 3 application: IBM's paths to `ibm`, all others (and lifespan) to `native`."""

    def __init__(self, native: QmuxApp, ibm: IbmApp) -> None:
        self.native = native
        self.ibm = ibm

    def begin_shutdown(self) -> None:
        """Refuse new sessions and jobs on both APIs (IBM's reads the native app's flag)."""
        self.native.begin_shutdown()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and IbmApp.handles(scope["path"]):
            await self.ibm(scope, receive, send)
        else:
            await self.native(scope, receive, send)


@final
class IbmApp:
    """An ASGI 3 application serving `ROUTES` (``http`` scopes)."""

    def __init__(self, api: IbmApi, routes: Sequence[Route] = ROUTES) -> None:
        self.api = api
        self.routes = tuple(routes)
        self._in_flight = 0

    @staticmethod
    def handles(path: str) -> bool:
        """Whether `path` is IBM's: the token operation, or under the API prefix."""
        return path in (IAM_PATH, API_PREFIX) or path.startswith(f"{API_PREFIX}/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = trio.current_time()
        trace_id = secrets.token_hex(8)
        route: Route | None = None
        tenant: str | None = None
        try:
            route, params = self._route(scope)
            tenant = self._authenticate(route, scope)
            reply = await self._admit(route, params, tenant, scope, receive)
        except HttpError as refusal:
            reply = refusal.reply()
        await _send(send, scope, reply, trace_id)
        log = _log.debug if route is not None and route.operation_id == _POLL and reply.status == 200 else _log.info
        log(
            "http.request",
            api="ibm",
            method=scope["method"],
            path=scope["path"],
            route=route.operation_id if route else None,
            status=reply.status,
            tenant=tenant,
            duration_ms=round((trio.current_time() - started) * 1000, 3),
            trace_id=trace_id,
        )

    def _route(self, scope: Scope) -> tuple[Route, dict[str, str]]:
        return find_route(
            self.routes,
            scope["method"],
            scope["path"],
            unknown="qmux serves the part of IBM's Runtime API that qiskit-ibm-runtime uses",
        )

    def _authenticate(self, route: Route, scope: Scope) -> str | None:
        if route.public:
            return None
        tenant = self.api.tokens.tenant(_header(scope, b"authorization"))
        if tenant is None:
            raise HttpError(
                401,
                AuthenticationError(
                    "this request needs Authorization: Bearer <token>, with an access token from "
                    f"{IAM_PATH} (or a tenant's token) that this server issued and that has not expired"
                ),
                code="unauthorized",
                headers={"www-authenticate": 'Bearer realm="qmux"'},
            )
        return tenant

    async def _admit(
        self, route: Route, params: dict[str, str], tenant: str | None, scope: Scope, receive: Receive
    ) -> Reply:
        settings = self.api.native.settings
        if self._in_flight >= settings.max_in_flight:
            raise HttpError(
                503,
                ServiceClosedError(f"the server is handling {self._in_flight} requests, its limit; retry shortly"),
                code="busy",
                headers={"retry-after": "1"},
            )
        self._in_flight += 1
        try:
            check_content_length(_header(scope, b"content-length"), settings.max_body_bytes)
            raw = await read_body(receive, settings.max_body_bytes)
            request = Request(
                tenant=tenant or "",
                params=params,
                query=_decode_query(scope, route),
                body=_decode_body(scope, raw, route),
            )
            try:
                return await route.handler(self.api, request)
            except HttpError:  # a handler's own refusal, with its status: answered as is
                raise
            except QmuxError as error:
                return Reply.error(error)
            except Exception as exc:  # a bug: log it whole, tell the client only that it happened
                _log.error("http.error", api="ibm", route=route.operation_id, exc_info=exc)
                return Reply.error(QmuxError("the server failed to handle this request; see its log"))
        finally:
            self._in_flight -= 1


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _decode_body(scope: Scope, raw: bytes, route: Route) -> Any:
    """The body as `route.body`, from JSON or a form; a body on a route that takes none is ignored."""
    kind = route.body
    if kind is None:
        return None
    content_type = (_header(scope, b"content-type") or "application/json").split(";")[0].strip().lower()
    try:
        if content_type == _FORM:
            return msgspec.convert(dict(urllib.parse.parse_qsl(raw.decode("utf-8"))), kind, strict=False)
        if content_type != "application/json":
            raise HttpError(
                415,
                InvalidInputError(f"the body must be application/json or {_FORM}, not {content_type}"),
                code="unsupported_media_type",
            )
        if not raw.strip():
            raise HttpError(400, InvalidInputError("this request needs a JSON body"), code="malformed_json")
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise HttpError(422, InvalidInputError(f"invalid body: {exc}"), code="invalid_body") from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise HttpError(400, InvalidInputError(f"the body cannot be read: {exc}"), code="malformed_body") from exc


def _decode_query(scope: Scope, route: Route) -> Any:
    """The query as `route.query`; parameters it does not name are ignored (IBM's client sends several)."""
    kind = route.query
    if kind is None:
        return None
    lists: frozenset[str] = getattr(kind, "list_params", frozenset())
    text = bytes(scope.get("query_string", b"")).decode("latin-1")
    values: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        if key in lists:
            values.setdefault(key, []).append(value)
        elif key in values:
            raise HttpError(422, InvalidInputError(f"query parameter {key!r} is given twice"), code="invalid_query")
        else:
            values[key] = value
    try:
        return msgspec.convert(values, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise HttpError(422, InvalidInputError(f"invalid query: {exc}"), code="invalid_query") from exc


async def _send(send: Send, scope: Scope, reply: Reply, trace_id: str) -> None:
    headers = [(b"cache-control", b"no-store"), (b"uber-trace-id", trace_id.encode("ascii"))]
    headers += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers.items()]
    headers.append((b"content-length", str(len(reply.body)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    body = b"" if scope["method"] == "HEAD" else reply.body
    await send({"type": "http.response.body", "body": body, "more_body": False})
