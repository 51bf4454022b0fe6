"""Reading a qmux server's Server-Sent Events as ``qmux.Event`` objects, reconnecting on its own (SPEC E1).

`SseParser` follows the WHATWG event-stream rules (fields, comments, multi-line data, ``id``
kept across events). `RemoteEvents` is what ``session.events()``, ``job.events()`` and
``service.events()`` return through ``qmux.connect``: an async iterator, like the local one, fed
by a reader task that starts at once. The server listens from when the request reaches it, a
moment after the call: ``async with service.events() as events:`` waits for that, so that what
happens after the block begins is in the stream (a session's or a job's stream begins with its
state, so its state is never missed either way).

When the connection drops, the reader connects again with ``Last-Event-ID`` (the last event's
id), so the server replays what it missed; it waits a capped, jittered backoff between tries and
gives up after a few tries in a row with nothing read, raising `ServiceClosedError` from the
iterator. The connection's transport sends the new request to the next node if the stream's
node is the one that failed, so a stream resumes on another node of a cluster. When the server
ends the stream (the session closed and its jobs ended, the job ended, the server shut down),
the iterator ends; but a stream that only its node's shutting down ends (`resume_at_end`: one
of no session or job, with several nodes) is resumed at the next node instead, as after a drop.

A reader is bounded: it reads ahead at most `AHEAD` events, then stops reading the connection
(the server's buffer for it fills, and the hub tells it ``lagged``, as in process). An iterator
closed with ``aclose()`` (or ``async with``), or dropped, stops its reader and the server frees
its subscription.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final, final

import httpx
import structlog
import trio
from attrs import define, field, frozen

from .._core import Event, QmuxError, ServiceClosedError
from ._transport import backoff_after

__all__ = ["AHEAD", "RemoteEvents", "SseMessage", "SseParser", "event_of", "lines_of"]

_log = structlog.get_logger("qmux.remote")

#: events a reader takes ahead of the iterator's consumer
AHEAD: Final = 64
#: the longest the end of a closed response may take to read
_CLOSE_SECONDS: Final = 1.0

#: opens ``GET /events`` with these headers; the response's status is the caller's to check
Connect = Callable[[dict[str, str]], AbstractAsyncContextManager[httpx.Response]]
#: raises the qmux error a refused response stands for
Refusal = Callable[[httpx.Response], QmuxError]


@frozen
class SseMessage:
    """One dispatched event of an event stream."""

    event: str
    data: str
    #: the stream's last event id when it was dispatched
    last_id: str | None


@define
class SseParser:
    """The event-stream interpretation of lines (WHATWG HTML, "Server-sent events"), one line at a time."""

    last_id: str | None = None
    #: the reconnection time the server asked for, in milliseconds
    retry: int | None = None
    _event: str = field(default="", init=False)
    _data: list[str] = field(factory=list, init=False)

    def feed(self, line: str) -> SseMessage | None:
        """Take one line (without its end); a blank line dispatches the event it completes."""
        if not line:
            if not self._data:
                self._event = ""
                return None
            message = SseMessage(self._event or "message", "\n".join(self._data), self.last_id)
            self._event, self._data = "", []
            return message
        if line.startswith(":"):
            return None  # a comment: a keepalive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isdigit():
            self.retry = int(value)
        return None


@asynccontextmanager
async def lines_of(response: httpx.Response) -> AsyncIterator[AsyncIterator[str]]:
    """``response.aiter_lines()``, left cleanly however the reading stops.

    httpx reads a body through a chain of async generators; one left suspended (a reader that
    stops at an event, not at the end) is finalized by the garbage collector, which Trio warns
    of. On the way out the response is closed, after which the chain ends at once: it is read
    to that end (shielded and bounded), so that no generator is left behind.
    """
    lines = response.aiter_lines()
    try:
        yield lines
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(_CLOSE_SECONDS):
            await response.aclose()
            with contextlib.suppress(Exception):
                async for _ in lines:
                    pass


def event_of(message: SseMessage) -> Event:
    """A qmux event from its SSE message (the server's `EventDocument`)."""
    try:
        document: dict[str, Any] = json.loads(message.data)
        return Event(
            str(document["kind"]),
            dt.datetime.fromisoformat(document["at"]),
            session_id=document.get("session_id"),
            job_id=document.get("job_id"),
            data=dict(document.get("data") or {}),
            seq=int(document.get("seq") or 0),
            backend=document.get("backend"),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise QmuxError(f"an event from the server is not what qmux expects ({type(exc).__name__}: {exc})") from exc


@final
class RemoteEvents:
    """An async iterator of events over HTTP; ``async with`` or ``aclose()`` stop it early."""

    def __init__(
        self,
        nursery: trio.Nursery,
        connect: Connect,
        refusal: Refusal,
        *,
        tries: int,
        before: Callable[[], Awaitable[None]] | None = None,
        what: str = "events",
        resume_at_end: bool = False,
    ) -> None:
        send, self._receive = trio.open_memory_channel[Event](AHEAD)
        self._reader = _Reader(
            connect, refusal, send, tries=max(1, tries), before=before, what=what, resume_at_end=resume_at_end
        )
        nursery.start_soon(self._reader.run, name=f"qmux {what}")
        weakref.finalize(self, self._reader.stop)  # dropped unread: the reader stops, the server lets go

    def __aiter__(self) -> RemoteEvents:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            if self._reader.error is not None:
                raise self._reader.error.with_traceback(None) from None
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self._reader.stop()
        self._receive.close()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> RemoteEvents:
        """Wait until the server listens (or the stream has failed), so that what follows is in it."""
        await self._reader.listening.wait()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


@final
class _Reader:
    """The task behind one `RemoteEvents`: connect, parse, hand over, reconnect after a drop."""

    def __init__(
        self,
        connect: Connect,
        refusal: Refusal,
        send: trio.MemorySendChannel[Event],
        *,
        tries: int,
        before: Callable[[], Awaitable[None]] | None,
        what: str,
        resume_at_end: bool,
    ) -> None:
        self._connect, self._refusal, self._send = connect, refusal, send
        self._tries, self._before, self._what = tries, before, what
        self._resume_at_end = resume_at_end
        self._scope = trio.CancelScope()
        self.error: QmuxError | None = None
        #: set once the server has answered the first connection (or the reader has ended)
        self.listening = trio.Event()

    def stop(self) -> None:
        self._scope.cancel()

    async def run(self) -> None:
        #: what the iterator raises once it has what was read: cancelled from outside, the connection closed
        error: QmuxError | None = ServiceClosedError(f"the connection closed while reading {self._what}")
        try:
            with self._scope:
                try:
                    if self._before is not None:
                        await self._before()
                    await self._follow()
                    error = None
                except QmuxError as exc:
                    error = exc
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    error = None  # nobody reads any more
                except Exception as exc:  # a bug: the iterator says so, the connection goes on
                    _log.error("remote.events_failed", what=self._what, exc_info=exc)
                    error = QmuxError(f"reading {self._what} failed: {type(exc).__name__}: {exc}")
        finally:
            if not self._scope.cancel_called:  # stopped by its iterator: nobody is told anything
                self.error = error
            self._send.close()
            self.listening.set()

    async def _follow(self) -> None:
        parser = SseParser()
        failures = 0  # drops in a row with nothing read
        empty_ends = 0  # streams resumed at their end in a row with no event
        while True:
            headers = {"accept": "text/event-stream"}
            if parser.last_id is not None:
                headers["last-event-id"] = parser.last_id
            try:
                async with self._connect(headers) as response, lines_of(response) as lines:
                    if response.status_code != 200:
                        await response.aread()
                        raise self._refusal(response)
                    self.listening.set()
                    async for line in lines:
                        failures = 0  # the server is there: a later drop starts the count again
                        message = parser.feed(line)
                        if message is not None:
                            empty_ends = 0
                            await self._send.send(event_of(message))
                if not self._resume_at_end:
                    return  # the server ended the stream
                empty_ends += 1  # its node is shutting down: on at the next
                if empty_ends >= self._tries:
                    raise ServiceClosedError(
                        f"the event stream ({self._what}) ended {empty_ends} times in a row with no event on the "
                        "nodes it was resumed at"
                    )
                delay = backoff_after(empty_ends - 1)
            except httpx.TransportError as exc:
                failures += 1
                if failures >= self._tries:
                    raise ServiceClosedError(
                        f"lost the event stream ({self._what}) and could not get it back after {failures} tries: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                delay = backoff_after(failures - 1)
            _log.debug("remote.events_reconnect", what=self._what, last_id=parser.last_id, delay=delay)
            await trio.sleep(delay)
