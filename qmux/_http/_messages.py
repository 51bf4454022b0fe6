"""What travels through the pipeline: ASGI's types, a handler's `Request` and `Reply`, and `HttpError`.

A `Reply` is a whole response (status, bytes, headers): qmux's bodies are small and bounded, so
they are sent whole, with one exception: a reply may carry a `stream` of chunks instead (Server-
Sent Events), which the pipeline sends as they come and stops when the client goes away; a
`Producer` is such a stream written by tasks of its own (several streams merged into one). An
`HttpError` is a refusal with the status it answers with; which body carries it is the front
door's dialect's choice (`qmux._http.Dialect`).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any, final

import msgspec
import outcome
from attrs import field, frozen

from .._core import QmuxError

__all__ = ["HttpError", "Message", "Producer", "Receive", "Reply", "Request", "Scope", "Send", "capture", "header"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@final
class HttpError(Exception):
    """A request refused with `status`: the qmux error that says why, and the machine-readable `code`.

    The pipeline raises it at every step before the handler (404, 405, 401, 503, 413, 415, 400,
    422); a handler may raise it too, for an answer whose status is its API's own convention
    rather than the error's usual one (IBM's 409 for a result asked too early).
    """

    def __init__(self, status: int, error: QmuxError, *, code: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(str(error))
        self.status = status
        self.error = error
        self.code = code
        self.headers = dict(headers or {})


class Producer(abc.ABC):
    """A streaming body written by tasks of its own rather than read as an iterator: several
    streams merged into one, each read by its own task as its chunks come.

    The pipeline calls `produce` once, in a scope it cancels when the client goes away, and
    `aclose` once, however the stream ended (also when `produce` was never called, for a HEAD).
    """

    @abc.abstractmethod
    async def produce(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        """Send the body's chunks with `send`, each one whole, until the body ends."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Let go of what the body holds (subscriptions, connections)."""


@frozen
class Reply:
    """A response: status, body, headers; or, with `stream`, a body sent chunk by chunk."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(factory=dict)
    #: the body's chunks, sent as they come (``body`` is then unused); the pipeline closes it when
    #: it ends, when the client disconnects, or when the request is a HEAD
    stream: AsyncIterator[bytes] | Producer | None = field(default=None, repr=False)
    #: for a stream: ``(seconds, chunk)``, the chunk sent every so many seconds between the others,
    #: so that the client and proxies between see the connection alive (an SSE comment)
    keepalive: tuple[float, bytes] | None = None
    #: the node that answered, for a reply relayed from another node of a cluster: its headers are
    #: that node's, sent as they are (the pipeline adds none of its per-answer headers)
    via: str | None = None

    @classmethod
    def streaming(
        cls,
        status: int,
        chunks: AsyncIterator[bytes] | Producer,
        *,
        headers: Mapping[str, str],
        keepalive: tuple[float, bytes] | None = None,
        via: str | None = None,
    ) -> Reply:
        """A reply whose body is `chunks`; an async generator's ``finally`` runs when it is closed."""
        return cls(status, b"", dict(headers), chunks, keepalive, via)

    @classmethod
    def json(cls, status: int, payload: object, *, headers: Mapping[str, str] | None = None) -> Reply:
        """`payload` (msgspec structs, or plain JSON data) encoded as JSON."""
        return cls(status, msgspec.json.encode(payload), {"content-type": "application/json", **(headers or {})})

    @classmethod
    def empty(cls, status: int = 204) -> Reply:
        return cls(status)

    @classmethod
    def text(cls, status: int, text: str) -> Reply:
        return cls(status, text.encode("utf-8"), {"content-type": "text/plain; charset=utf-8"})


@frozen
class Request:
    """What a handler gets: who asks, the path's parameters, the decoded query and body."""

    tenant: str
    params: Mapping[str, str]
    query: Any = None
    body: Any = None
    #: the body's size on the wire, in bytes
    body_size: int = 0
    #: the request's headers as ASGI gives them (lowercase names); read them with `header`
    raw_headers: Sequence[tuple[bytes, bytes]] = ()

    def header(self, name: str) -> str | None:
        """The first value of header `name` (lowercase), or ``None``."""
        key = name.encode("latin-1")
        for found, value in self.raw_headers:
            if found == key:
                return bytes(value).decode("latin-1")
        return None


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of request header `name` (lowercase bytes, as ASGI gives them), or ``None``."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def capture(call: Awaitable[Reply]) -> outcome.Outcome[Reply]:
    """`call`'s reply or exception, kept to be raised outside a nursery (where it is not wrapped in
    an exception group). Not `outcome.acapture`: a `trio.Cancelled` must propagate, not be kept."""
    try:
        return outcome.Value(await call)
    except Exception as exc:
        return outcome.Error(exc)
