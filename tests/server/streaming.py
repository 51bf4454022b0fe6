"""Raw HTTP clients whose answers stream, for the tests of event streams (Server-Sent Events).

``httpx.ASGITransport`` hands over an answer once the app has finished it, which an event stream
never does while it is open; `streaming_client` uses qmux's in-memory transport instead, whose
app calls run in a nursery of the test's. `SseReader` reads an open stream's events as the SSE
fields of each (``id``, ``event``, ``data`` decoded from JSON).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import trio

from qmux._remote import StreamingASGITransport
from qmux._remote._sse import lines_of
from qmux.server import QmuxApp

BASE_URL = "http://qmux.test"


def streaming_client(app: QmuxApp, nursery: trio.Nursery, token: str) -> httpx.AsyncClient:
    """A raw client of `app` with `token`; each request's app call runs in `nursery`."""
    return httpx.AsyncClient(
        transport=StreamingASGITransport(app, nursery),
        base_url=BASE_URL,
        headers={"authorization": f"Bearer {token}"},
    )


class SseReader:
    """The events of one open stream, read a few at a time: ``async with SseReader(response) as reader``.

    Leaving the block closes the response and reads httpx's line iterator to its end (qmux's own
    `lines_of`), so that no async generator is left for the garbage collector.
    """

    def __init__(self, response: httpx.Response) -> None:
        self._within = lines_of(response)
        self._lines: AsyncIterator[str] | None = None

    async def __aenter__(self) -> SseReader:
        self._lines = await self._within.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._within.__aexit__(*exc_info)

    async def lines(self, count: int) -> list[str]:
        """The next `count` lines, comments included."""
        assert self._lines is not None
        return [await anext(self._lines) for _ in range(count)]

    async def take(self, count: int | None = None) -> list[dict[str, Any]]:
        """The next `count` events (all, to the stream's end, if None)."""
        assert self._lines is not None
        events: list[dict[str, Any]] = []
        fields: dict[str, Any] = {}
        async for line in self._lines:
            if line.startswith(":"):
                continue
            if line:
                name, _, value = line.partition(": ")
                fields[name] = json.loads(value) if name == "data" else value
                continue
            if "data" in fields:
                events.append(fields)
                if count is not None and len(events) == count:
                    return events
            fields = {}
        return events


async def events_of(response: httpx.Response, count: int | None = None) -> list[dict[str, Any]]:
    """The next `count` events of `response` (all, if None), the response closed after."""
    async with SseReader(response) as reader:
        return await reader.take(count)
