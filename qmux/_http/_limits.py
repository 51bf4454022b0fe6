"""The bounds the pipeline keeps: requests handled at once, and the size of a request's body.

`HttpLimits` is what the pipeline and the handlers read of the server's settings
(`qmux.server.ServerSettings` is one). `InFlight` counts the requests being handled across every
front door of one server (the native API and IBM's share it), and refuses the one past the limit
with a 503 and ``Retry-After``. `read_body` stops reading at the limit rather than after it.
"""

from __future__ import annotations

from typing import Protocol, final

from attrs import define, field

from .._core import CapacityError, InvalidInputError, QmuxError
from ._messages import HttpError, Receive

__all__ = ["HttpLimits", "InFlight", "check_content_length", "read_body"]


class HttpLimits(Protocol):
    """The server's bounds, as the pipeline and the handlers read them."""

    @property
    def max_body_bytes(self) -> int:
        """Larger request bodies answer 413."""

    @property
    def max_in_flight(self) -> int:
        """Requests handled at once; more answer 503 with Retry-After."""

    @property
    def long_poll(self) -> float:
        """The longest a request may be held waiting for a job, in seconds."""

    @property
    def max_blob_bytes(self) -> int:
        """The largest decompressed array or circuit in a job's inputs."""


@final
@define(eq=False)
class InFlight:
    """Requests being handled now, and the most there may be.

    ``with in_flight:`` counts one request while the block runs; past the limit, it raises the
    503 ``busy`` refusal instead. (A class, not a generator: it runs on every request.)
    """

    limit: int
    count: int = field(default=0, init=False)

    def __enter__(self) -> None:
        if self.count >= self.limit:
            raise HttpError(
                503,
                CapacityError(f"the server is handling {self.count} requests, its limit; retry shortly"),
                code="busy",
                headers={"retry-after": "1"},
            )
        self.count += 1

    def __exit__(self, *exc_info: object) -> None:
        self.count -= 1


def check_content_length(announced: str | None, limit: int) -> None:
    """Refuse at once a body whose Content-Length announces more than `limit` bytes."""
    if announced is None:
        return
    if not announced.isdigit():
        raise HttpError(400, InvalidInputError("Content-Length is not a number"), code="malformed_header")
    if int(announced) > limit:
        raise _too_large(limit)


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
