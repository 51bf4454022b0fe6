"""Remote services for tests: the HTTP front door over a local service, reached with `qmux.connect`.

`remote_service` is the ``"remote"`` kind of ``service_factory`` (tests/conftest.py): the same
behaviour suite runs in process and over HTTP. It talks to the ASGI app in memory through
``httpx.ASGITransport``: no sockets, so pytest-trio's ``autojump_clock`` drives it like a local
service. `real_server` runs hypercorn on 127.0.0.1, port 0, for end-to-end tests (real clock).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio
from attrs import frozen

import qmux
from qmux._remote._client import RemoteService, connect
from qmux.server import QmuxApp, ServerConfig, ServerSettings, Tenant, create_app, serve

TOKEN = "token-of-tenant-a"
OTHER_TOKEN = "token-of-tenant-b"
TENANTS = (Tenant.from_token("a", TOKEN), Tenant.from_token("b", OTHER_TOKEN))
BASE_URL = "http://qmux.test"


@asynccontextmanager
async def remote_service(
    backends: Sequence[qmux.Backend], settings: qmux.ServiceSettings | None = None
) -> AsyncIterator[RemoteService]:
    """A local service behind the HTTP API, as tenant "a" sees it through `qmux.connect`."""
    async with qmux.open_service(backends, settings=settings) as local:
        app = create_app(local, TENANTS)
        async with connect(BASE_URL, token=TOKEN, transport=httpx.ASGITransport(app=app)) as remote:
            yield remote


@asynccontextmanager
async def served_app(
    backends: Sequence[qmux.Backend],
    settings: qmux.ServiceSettings | None = None,
    server: ServerSettings | None = None,
) -> AsyncIterator[tuple[qmux.Service, QmuxApp]]:
    """A local service and the app over it, for tests that send raw HTTP."""
    async with qmux.open_service(backends, settings=settings) as local:
        yield local, create_app(local, TENANTS, server)


def asgi_client(app: QmuxApp, token: str | None = TOKEN) -> httpx.AsyncClient:
    """A raw httpx client on `app`, in memory, with `token` (none: no Authorization header)."""
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=headers)


@frozen
class RealServer:
    """A running ``serve``: its URL, and the event that shuts it down."""

    url: str
    stop: trio.Event


@asynccontextmanager
async def real_server(
    backends: Sequence[qmux.Backend] | None = None, *, server: dict[str, Any] | None = None, **service: Any
) -> AsyncIterator[RealServer]:
    """``qmux serve`` on 127.0.0.1, port 0, in this process; shut down on exit (or by ``stop.set()``).

    `server`: `ServerSettings` fields beyond the address; the rest are `ServiceSettings` fields.
    """
    config = ServerConfig(
        tenants=TENANTS,
        server=ServerSettings(host="127.0.0.1", port=0, **(server or {})),
        service=qmux.ServiceSettings(**({"shutdown_grace": 1.0} | service)),
        backends=tuple(backends) if backends is not None else None,
    )
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(functools.partial(serve, config, shutdown_trigger=stop.wait))
        try:
            yield RealServer(url, stop)
        finally:
            stop.set()
