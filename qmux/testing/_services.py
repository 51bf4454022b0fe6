"""Services for tests: in process, and the same service reached over its HTTP API in memory.

`connect_in_memory` puts ``qmux.server.create_app`` over a running service and connects to it with
``qmux.connect`` through an in-memory ASGI transport that streams answers as they are sent (event
streams included): real requests, real routes, real encoding, no socket. Everything stays in one
Trio run, so a virtual clock drives the client, the server and the session actors alike. It
needs the ``server`` extra (hypercorn, msgspec), imported only when a remote service is asked for.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Final, Protocol

import trio

import qmux
from qmux._remote import StreamingASGITransport

if TYPE_CHECKING:
    from qmux.server import ServerSettings

__all__ = [
    "SERVICE_KINDS",
    "AnyService",
    "ServiceFactory",
    "connect_in_memory",
    "local_service",
    "missing_server_extra",
    "remote_service",
]

#: what a test holds: a service in process, or a client of one
AnyService = qmux.Service | qmux.RemoteService

#: the tenant an in-memory client is, and its token (in memory only: nothing listens)
TENANT: Final = "qmux-testing"
TOKEN: Final = "qmux-testing-token"
BASE_URL: Final = "http://qmux.test"
_SERVER_NEEDS: Final = ("hypercorn", "msgspec")


class ServiceFactory(Protocol):
    """``async with factory(backends, settings) as service``: a running service, however it is reached."""

    def __call__(
        self, backends: Iterable[qmux.Backend], settings: qmux.ServiceSettings | None = None
    ) -> AbstractAsyncContextManager[AnyService]: ...


def missing_server_extra() -> str | None:
    """Why a remote service cannot run here (the ``server`` extra is not installed), or None."""
    missing = [name for name in _SERVER_NEEDS if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return f"needs the server extra ({', '.join(missing)} not installed): pip install 'qmux[server]'"


@asynccontextmanager
async def local_service(
    backends: Iterable[qmux.Backend], settings: qmux.ServiceSettings | None = None
) -> AsyncIterator[qmux.Service]:
    """``qmux.open_service(backends, settings=settings)``: the service, in process."""
    async with qmux.open_service(backends, settings=settings) as service:
        yield service


@asynccontextmanager
async def connect_in_memory(
    service: qmux.Service, *, server_settings: ServerSettings | None = None
) -> AsyncIterator[qmux.RemoteService]:
    """`service` as a client of its HTTP API sees it: ``qmux.connect`` over an in-memory transport.

    The client is one tenant, so it sees the sessions and jobs opened through it, not those
    opened on `service` directly (SPEC V1: each tenant sees its own).
    """
    reason = missing_server_extra()
    if reason is not None:
        raise ImportError(f"qmux.testing.connect_in_memory {reason}")
    from qmux.server import Tenant, create_app

    app = create_app(service, (Tenant.from_token(TENANT, TOKEN),), server_settings)
    async with trio.open_nursery() as nursery:
        transport = StreamingASGITransport(app, nursery)
        async with qmux.connect(BASE_URL, token=TOKEN, transport=transport) as remote:
            yield remote
        nursery.cancel_scope.cancel()  # answers nobody reads any more (streams left open)


@asynccontextmanager
async def remote_service(
    backends: Iterable[qmux.Backend], settings: qmux.ServiceSettings | None = None
) -> AsyncIterator[qmux.RemoteService]:
    """A service on `backends`, as a client reaches it over HTTP (`connect_in_memory`)."""
    async with qmux.open_service(backends, settings=settings) as local, connect_in_memory(local) as remote:
        yield remote


#: the ways to reach a service that `qmux_service_factory` runs a test against, by test id
SERVICE_KINDS: Final[Mapping[str, ServiceFactory]] = {"local": local_service, "remote": remote_service}
