"""The little HTTP layer the API needs: routes, requests, replies, and reading a bounded body.

A route is a declaration (method, path template, body, query and reply types, the statuses it
may answer, a handler); the app dispatches on it and ``/openapi.json`` is generated from it, so
the two are one table.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any, Final, final

import msgspec
from attrs import field, frozen

from .._core import InvalidInputError, NotFoundError, QmuxError
from .._wire import error_status, error_to_wire

__all__ = [
    "RAW_JSON",
    "HttpError",
    "Receive",
    "Reply",
    "Request",
    "Route",
    "Scope",
    "Send",
    "check_content_length",
    "find_route",
    "read_body",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: a reply type meaning "any JSON in the wire encoding" (job results)
RAW_JSON: Final = object()

_PARAM = re.compile(r"\{([a-z_]+)\}")


@final
class HttpError(Exception):
    """A request refused before (or instead of) reaching a handler: its status, code and error."""

    def __init__(self, status: int, error: QmuxError, *, code: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(str(error))
        self.status = status
        self.error = error
        self.code = code
        self.headers = dict(headers or {})

    def reply(self) -> Reply:
        return Reply.json(self.status, error_to_wire(self.error, code=self.code), headers=self.headers)


@frozen
class Reply:
    """A whole response: status, body, headers. Bodies are small and bounded, so never streamed."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(factory=dict)

    @classmethod
    def json(cls, status: int, payload: object, *, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(status, msgspec.json.encode(payload), {"content-type": "application/json", **(headers or {})})

    @classmethod
    def empty(cls, status: int = 204) -> Reply:
        return cls(status)

    @classmethod
    def error(cls, error: QmuxError) -> Reply:
        status, code = error_status(error)
        return cls.json(status, error_to_wire(error, code=code))


@frozen
class Request:
    """What a handler gets: who asks, the path's parameters, the decoded query and body."""

    tenant: str
    params: Mapping[str, str]
    query: Any = None
    body: Any = None


Handler = Callable[[Any, Request], Awaitable[Reply]]


@frozen
class Route:
    """One operation of the API, declared once for dispatch and for the OpenAPI document."""

    method: str
    path: str
    operation_id: str
    summary: str
    handler: Handler = field(repr=False)
    #: success statuses and their reply types: a msgspec struct, `RAW_JSON`, or None (no body)
    ok: Mapping[int, Any]
    #: the error statuses the handler itself may answer (the app adds the generic ones)
    errors: tuple[int, ...] = ()
    body: type[msgspec.Struct] | None = None
    query: type[msgspec.Struct] | None = None
    #: answered without a token
    public: bool = False
    description: str = ""
    pattern: re.Pattern[str] = field(init=False, repr=False)

    @pattern.default
    def _compile(self) -> re.Pattern[str]:
        parts = _PARAM.split(self.path)
        regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
        return re.compile(regex)

    @property
    def path_params(self) -> list[str]:
        return _PARAM.findall(self.path)

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found is not None else None


async def read_body(receive: Receive, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(400, QmuxError("the client went away before sending its whole body"), code="disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(limit: int) -> HttpError:
    return HttpError(
        413, InvalidInputError(f"the request body is larger than {limit} bytes, the server's limit"), code="too_large"
    )


def check_content_length(announced: str | None, limit: int) -> None:
    """Refuse at once a body whose Content-Length announces more than `limit` bytes."""
    if announced is None:
        return
    if not announced.isdigit():
        raise HttpError(400, InvalidInputError("Content-Length is not a number"), code="malformed_header")
    if int(announced) > limit:
        raise _too_large(limit)


def find_route(routes: Sequence[Route], method: str, path: str, *, unknown: str) -> tuple[Route, dict[str, str]]:
    """The route serving ``method path`` and its path parameters; else a 405 naming what is allowed,
    or a 404 that says `unknown`. HEAD is served by the GET route."""
    allowed: list[str] = []
    for route in routes:
        params = route.match(path)
        if params is None:
            continue
        if route.method == method or (method == "HEAD" and route.method == "GET"):
            return route, params
        allowed.append(route.method)
    if allowed:
        raise HttpError(
            405,
            InvalidInputError(f"{method} is not allowed on {path}; allowed: {', '.join(allowed)}"),
            code="method_not_allowed",
            headers={"allow": ", ".join(allowed)},
        )
    raise HttpError(404, NotFoundError(f"no route {path!r}: {unknown}"), code="route_not_found")
