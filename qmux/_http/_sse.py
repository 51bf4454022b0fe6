"""Server-Sent Events: an event subscription of the core as a ``text/event-stream`` body (SPEC E1).

Each event is one SSE message: ``id:`` its ``seq`` (what a client sends back as
``Last-Event-ID`` to resume), ``event:`` its kind, ``data:`` its `EventDocument` as JSON. A
``lagged`` event has no id (it has no place in the sequence), so a client's last id stays that of
the last real event. The body begins with ``retry:`` (the reconnection delay a browser should
use), and a comment goes out every `KEEPALIVE_SECONDS` (sent by the pipeline beside the events,
never by timing out a read of the subscription, which could lose the event it had taken).

A stream of all the tenant's events (no session or job named) says where it begins in the
service's sequence: its ``Qmux-Event-Seq`` header is a seq reserved when it subscribed, before
every event it carries and after every event before it; resuming after it misses nothing of what
came since. (A cluster's merged stream starts each node's place from it, `qmux._http._merged_events`.)

The stream ends when the subscription does (a session closed with its jobs ended, a job ended, the
server shutting down); whatever way it ends, client gone included, its subscription is closed, so
the tenant's subscriber slot is free at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, final

import msgspec
from attrs import frozen

from .._core import Event, Subscription
from ._documents import EventDocument
from ._messages import Reply

__all__ = ["EVENT_SEQ_HEADER", "KEEPALIVE_SECONDS", "Feed", "encode_event", "event_reply"]

#: a comment goes out this often on an open stream, so that the client and proxies see it alive
KEEPALIVE_SECONDS: Final = 15.0
#: how long a browser's EventSource waits before it reconnects, in milliseconds
RETRY_MILLISECONDS: Final = 1000
_HEADERS: Final = {"content-type": "text/event-stream; charset=utf-8", "x-accel-buffering": "no"}
#: answer header of a stream of all events: the seq it begins after
EVENT_SEQ_HEADER: Final = "qmux-event-seq"
_KEEPALIVE: Final = b": keepalive\n\n"


@frozen
class Feed:
    """What one stream sends: `current` first (a session's or job's state now), then `subscription`.

    `current` was read after `subscription` began to buffer, so events the subscription holds from
    before it may already be in it: a session's state changes older than `current` are left out
    (it says where they led), everything else is sent.
    """

    subscription: Subscription
    current: Event | None = None
    #: for a stream of all events: the seq reserved when it subscribed (`EVENT_SEQ_HEADER`)
    start: int | None = None

    def stale(self, event: Event) -> bool:
        current = self.current
        return (
            current is not None
            and 0 < event.seq < current.seq
            and event.session_id == current.session_id
            and current.job_id is None
            and event.job_id is None
            and event.kind.startswith("session.")
            and not event.kind.endswith("_warning")
        )


def encode_event(event: Event) -> bytes:
    """One SSE message: ``id`` (unless it has no place in the sequence), ``event``, ``data``."""
    head = f"id: {event.seq}\nevent: {event.kind}\n" if event.seq else f"event: {event.kind}\n"
    return head.encode() + b"data: " + msgspec.json.encode(EventDocument.of(event)) + b"\n\n"


def event_reply(feed: Feed, *, on_close: Callable[[], None] = lambda: None) -> Reply:
    """The 200 that streams `feed`; `on_close` runs once it has ended, however it ended."""
    headers = _HEADERS if feed.start is None else {**_HEADERS, EVENT_SEQ_HEADER: str(feed.start)}
    return Reply.streaming(200, _Chunks(feed, on_close), headers=headers, keepalive=(KEEPALIVE_SECONDS, _KEEPALIVE))


@final
class _Chunks:
    """The body of one stream (an iterator object: closed even if never read, as for a HEAD)."""

    def __init__(self, feed: Feed, on_close: Callable[[], None]) -> None:
        self._feed = feed
        self._on_close = on_close
        self._started = False
        self._closed = False

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        feed = self._feed
        if not self._started:
            self._started = True
            head = f"retry: {RETRY_MILLISECONDS}\n\n".encode()
            return head + encode_event(feed.current) if feed.current is not None else head
        while not self._closed:
            try:
                event = await feed.subscription.__anext__()
            except StopAsyncIteration:
                await self.aclose()
                break
            if not feed.stale(event):
                return encode_event(event)
        raise StopAsyncIteration

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._feed.subscription.close()
            self._on_close()
