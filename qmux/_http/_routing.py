"""Routes: one declaration per operation, read by dispatch and by the OpenAPI document alike.

A `Route` says everything about an operation once: method, path template, body, query and reply
types, the statuses its handler may answer, the handler. `find_route` dispatches on a table of
them; `qmux._http.openapi_document` describes the same table, so the two cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import msgspec
from attrs import field, frozen

from .._core import InvalidInputError, NotFoundError
from ._forwarding import Locate
from ._messages import HttpError, Reply, Request

__all__ = ["RAW_JSON", "RAW_TEXT", "EventStream", "Handler", "Route", "find_route"]

#: a reply type meaning "any JSON" (job results in the wire encoding, this API's own description)
RAW_JSON: Final = object()
#: a reply type meaning plain text (Prometheus's exposition format)
RAW_TEXT: Final = object()


@frozen
class EventStream:
    """A reply type: Server-Sent Events (``text/event-stream``) whose ``data`` are `event` documents."""

    event: type[msgspec.Struct]


#: a handler is called with its front door's handler object (`FrontDoor.handlers`) and the request
Handler = Callable[[Any, Request], Awaitable[Reply]]

_PARAM = re.compile(r"\{([a-z_]+)\}")


@frozen
class Route:
    """One operation of an API."""

    method: str
    path: str
    operation_id: str
    summary: str
    handler: Handler = field(repr=False)
    #: success statuses and their reply types: a msgspec struct, `RAW_JSON`, an `EventStream`, or None (no body)
    ok: Mapping[int, Any]
    #: the error statuses the handler itself may answer (the pipeline adds the generic ones)
    errors: tuple[int, ...] = ()
    body: type[msgspec.Struct] | None = None
    query: type[msgspec.Struct] | None = None
    #: answered without a token
    public: bool = False
    #: polled many times a second by its clients: a success is logged at debug level, not info
    quiet: bool = False
    #: counted against the server's in-flight limit; a cheap probe that must answer under load is not
    bounded: bool = True
    description: str = ""
    #: in a cluster, which node answers: the one holding what the request names, or all of them,
    #: merged (`qmux._http.Locate`); none: the node the request reached, as with one node
    locate: Locate | None = None
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
