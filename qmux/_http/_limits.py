"""The bounds the pipeline keeps on one request: its body's size and arrival time, and its JSON's depth.

`HttpLimits` is what the pipeline and the handlers read of the server's settings
(`qmux.server.ServerSettings` is one). `read_body` stops reading at the size limit rather than
after it, and gives up when the body has not arrived in time: a client that announces a body
and sends it a byte at a time holds its slot for ``body_timeout`` at most. `check_json_depth`
refuses a body that nests deeper than `MAX_JSON_DEPTH` before any parser recurses into it.
Who may be handled at all, and how many at once, is `qmux._http._admission`'s affair.
"""

from __future__ import annotations

import array
import itertools
import re
from typing import Final, Protocol

import trio

from .. import _wire
from .._core import InvalidInputError, QmuxError
from ._messages import HttpError, Receive

__all__ = ["MAX_JSON_DEPTH", "HttpLimits", "check_content_length", "check_json_depth", "read_body"]

#: deepest nesting of a JSON body: the wire's deepest value (`qmux._wire.MAX_DEPTH`) and the
#: request's own objects around it (the body, ``params``, ``options``)
MAX_JSON_DEPTH: Final = _wire.MAX_DEPTH + 8


class HttpLimits(Protocol):
    """The server's bounds, as the pipeline and the handlers read them (`qmux.server.ServerSettings`)."""

    @property
    def max_body_bytes(self) -> int:
        """Larger request bodies answer 413."""

    @property
    def max_blob_bytes(self) -> int:
        """The most the arrays and circuits of one request may decompress to, all together."""

    @property
    def body_timeout(self) -> float:
        """The longest a request's body may take to arrive, in seconds; then 408."""

    @property
    def long_poll(self) -> float:
        """The longest a request may be held waiting for a job, in seconds."""

    @property
    def max_in_flight(self) -> int:
        """Requests handled at once, all tenants together; more answer 503 with Retry-After."""

    @property
    def max_in_flight_per_tenant(self) -> int:
        """Requests of one tenant handled at once; more answer 503 with Retry-After."""

    @property
    def rate_per_tenant(self) -> int:
        """Requests per second one tenant may make, sustained; more answer 429 with Retry-After."""

    @property
    def burst_per_tenant(self) -> int:
        """Requests one tenant may make at once above its rate."""

    @property
    def max_open_sessions_per_tenant(self) -> int:
        """Sessions one tenant may have open at once; more answer 429."""

    @property
    def max_queued_jobs_per_tenant(self) -> int:
        """Jobs one tenant may have queued or running at once; more answer 429."""

    @property
    def failed_auth_per_minute(self) -> int:
        """Failed authentications per minute one client address may make, sustained; more answer 429."""

    @property
    def failed_auth_burst(self) -> int:
        """Failed authentications one client address may make at once above that rate."""


def check_content_length(announced: str | None, limit: int) -> None:
    """Refuse at once a body whose Content-Length announces more than `limit` bytes."""
    if announced is None:
        return
    if not announced.isdigit():
        raise HttpError(400, InvalidInputError("Content-Length is not a number"), code="malformed_header")
    if int(announced) > limit:
        raise _too_large(limit)


async def read_body(receive: Receive, limit: int, timeout: float = float("inf")) -> bytes:
    """The request body: 413 as soon as it passes `limit` bytes, 408 if it takes over `timeout` seconds."""
    chunks: list[bytes] = []
    size = 0
    with trio.move_on_after(timeout):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HttpError(
                    400, QmuxError("the client went away before sending its whole body"), code="disconnected"
                )
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
    raise HttpError(
        408,
        InvalidInputError(f"the request body did not arrive within {timeout:g} s, the server's limit"),
        code="body_timeout",
        headers={"connection": "close"},
    )


def _too_large(limit: int) -> HttpError:
    return HttpError(
        413, InvalidInputError(f"the request body is larger than {limit} bytes, the server's limit"), code="too_large"
    )


# -- JSON depth ------------------------------------------------------------------------------------

#: a JSON string, escapes included (its brackets are text, not structure)
_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_OPENING: Final = b"[{"
_NOT_BRACKETS: Final = bytes(sorted(set(range(256)) - set(b"[]{}")))
#: an opening bracket as +1, a closing one as -1 (a signed byte)
_STEPS: Final = bytes.maketrans(b"[{]}", bytes([1, 1, 255, 255]))


def check_json_depth(raw: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse (422) a JSON text whose arrays and objects nest more than `limit` deep.

    A parser recurses once per level, and ~1000 levels fit in a 2 KB body: this runs first, at C
    speed (strings are cut out by one regular expression, the brackets left are summed), and
    costs nothing for a body with fewer opening brackets than `limit`.
    """
    if raw.count(_OPENING[:1]) + raw.count(_OPENING[1:]) <= limit:
        return
    steps = array.array("b", _STRING.sub(b"", raw).translate(_STEPS, _NOT_BRACKETS))
    if max(itertools.accumulate(steps), default=0) > limit:
        raise HttpError(
            422,
            InvalidInputError(f"the JSON body nests deeper than {limit} levels, the server's limit"),
            code="too_deep",
        )
