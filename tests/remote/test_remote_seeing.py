"""Seeing what runs through ``qmux.connect``: listings read page by page (SPEC V1), and events
(SPEC E1) read from Server-Sent Events as ``qmux.Event``, by a client that gets a dropped stream
back on its own.

A transport between the client and the in-memory server cuts an event stream once, mid-way, as a
proxy or a flaky network would; the client must reconnect with ``Last-Event-ID`` and see every
event once. In memory, on the virtual clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import final

import httpx
import pytest
import trio
import trio.testing
from trio.abc import Clock

import qmux
from qmux._remote import StreamingASGITransport
from qmux._remote._sse import SseParser
from qmux.testing import job, qpu

from ..support.remote import BASE_URL, TOKEN, served_app


@final
class CutsStreams(httpx.AsyncBaseTransport):
    """Passes requests on; the first `cuts` event streams break after `after` chunks; later
    connections are refused once `refuse` is set."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, after: int, cuts: int = 1) -> None:
        self.inner, self.after, self.cuts = inner, after, cuts
        self.refuse = False
        self.streams: list[httpx.Request] = []
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.refuse:
            raise httpx.ConnectError("connection refused", request=request)
        self.requests.append(request)
        response = await self.inner.handle_async_request(request)
        if request.url.path != "/events":
            return response
        self.streams.append(request)
        if len(self.streams) > self.cuts:
            return response
        return httpx.Response(
            response.status_code, headers=response.headers, stream=_Cut(response, self.after), request=request
        )


@final
class _Cut(httpx.AsyncByteStream):
    """A body that breaks after `after` chunks, as a connection reset does."""

    def __init__(self, response: httpx.Response, after: int) -> None:
        assert isinstance(response.stream, httpx.AsyncByteStream)
        self._response, self._chunks, self._left = response, aiter(response.stream), after

    def __aiter__(self) -> _Cut:
        return self

    async def __anext__(self) -> bytes:
        if self._left == 0:
            await self.aclose()
            raise httpx.ReadError("connection reset by peer")
        self._left -= 1
        return await anext(self._chunks)

    async def aclose(self) -> None:
        await self._response.aclose()


@asynccontextmanager
async def connected(after: int = 3) -> AsyncIterator[tuple[qmux.Service, qmux.RemoteService, CutsStreams]]:
    """A service on "q", reached by tenant a through a transport that cuts the first event stream."""
    async with served_app([qpu("q")]) as (local, app), trio.open_nursery() as nursery:
        cutting = CutsStreams(StreamingASGITransport(app, nursery), after=after)
        async with qmux.connect(BASE_URL, token=TOKEN, transport=cutting) as remote:
            yield local, remote, cutting
        nursery.cancel_scope.cancel()


async def test_V1_listings_are_read_page_by_page_up_to_the_limit(autojump_clock: Clock) -> None:
    async with connected() as (_, remote, cutting):
        opened = [qmux.Session(service=remote, backend="q") for _ in range(230)]
        for session in opened:
            await session.status()  # created on the server
        cutting.requests.clear()
        listed = [session.session_id async for session in remote.sessions()]
        assert sorted(listed) == sorted(s.session_id for s in opened) and len(set(listed)) == 230
        assert [r.url.params["limit"] for r in cutting.requests] == ["100", "100", "100"]
        cutting.requests.clear()
        assert len([s async for s in remote.sessions(limit=150)]) == 150
        assert [r.url.params["limit"] for r in cutting.requests] == ["100", "50"], "no more asked than wanted"
        with pytest.raises(qmux.InvalidInputError, match="limit=0"):
            [s async for s in remote.sessions(limit=0)]


async def test_E1_the_client_reconnects_after_a_dropped_stream_and_loses_no_event(autojump_clock: Clock) -> None:
    async with connected() as (_, remote, cutting):
        session = qmux.Session(service=remote, backend="q")
        seen: list[qmux.Event] = []

        async def follow() -> None:
            seen.extend([event async for event in session.events()])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            await trio.sleep(0.1)
            for seconds in (1, 2):
                await (await session.run("script", job(seconds))).result()
            await session.close()
        assert [event.kind for event in seen] == [
            "session.open",
            "job.queued",
            "session.active",
            "job.running",  # read from the second connection: the first broke before it
            "job.done",
            "job.queued",
            "job.running",
            "job.done",
            "session.closed",
        ]
        assert len(cutting.streams) == 2, "one cut, one reconnection"
        assert cutting.streams[1].headers["last-event-id"] == str(seen[2].seq)
        assert [event.seq for event in seen] == sorted({event.seq for event in seen}), "each once, in order"
        assert all(isinstance(event, qmux.Event) and event.at.tzinfo is not None for event in seen)


async def test_E1_a_stream_that_cannot_be_had_back_raises_service_closed(autojump_clock: Clock) -> None:
    async with connected(after=2) as (_, remote, cutting), remote.events() as events:  # the server listens now
        submitted = await remote.backend("q").run("script", job(1))
        assert (await anext(events)).job_id == submitted.job_id  # then the stream breaks
        cutting.refuse = True  # and the server is gone for good
        with pytest.raises(qmux.ServiceClosedError, match="lost the event stream"):
            async for _ in events:
                pass


async def test_E1_closing_an_iterator_frees_its_subscription_on_the_server(autojump_clock: Clock) -> None:
    async with connected() as (local, remote, _):
        submitted = await remote.backend("q").run("script", job(5))
        events = submitted.events()
        assert (await anext(events)).kind in ("job.queued", "job.running")
        assert local.events_hub.subscriber_count() == 1
        await events.aclose()
        await trio.testing.wait_all_tasks_blocked()
        assert local.events_hub.subscriber_count() == 0
        await submitted.result()


def test_the_parser_follows_the_event_stream_rules() -> None:
    parser = SseParser()
    lines = ["retry: 2500", ": a comment", "id: 7", "event: job.done", "data: {", "data:  1}", "", "", "data:x", ""]
    dispatched = [message for line in lines if (message := parser.feed(line)) is not None]
    assert [(m.event, m.data, m.last_id) for m in dispatched] == [("job.done", "{\n 1}", "7"), ("message", "x", "7")]
    assert parser.retry == 2500
