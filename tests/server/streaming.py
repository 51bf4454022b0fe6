"""Raw HTTP clients whose answers stream, for the tests of event streams (Server-Sent Events).

``httpx.ASGITransport`` hands over an answer once the app has finished it, which an event stream
never does while it is open; `streaming_client` uses qmux's in-memory transport instead, whose
app calls run in a nursery of the test's.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio

from qmux._remote import StreamingASGITransport
from qmux.server import QmuxApp

BASE_URL = "http://qmux.test"


def streaming_client(app: QmuxApp, nursery: trio.Nursery, token: str) -> httpx.AsyncClient:
    """A raw client of `app` with `token`; each request's app call runs in `nursery`."""
    return httpx.AsyncClient(
        transport=StreamingASGITransport(app, nursery),
        base_url=BASE_URL,
        headers={"authorization": f"Bearer {token}"},
    )


async def read_events(response: httpx.Response, count: int | None = None) -> list[dict[str, Any]]:
    """The next `count` events of an open stream (all, to its end, if None), each as its SSE fields."""
    events: list[dict[str, Any]] = []
    fields: dict[str, Any] = {}
    async for line in response.aiter_lines():
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
