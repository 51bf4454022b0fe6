"""Several nodes in memory, each of which a test can kill, drain, or make lose an answer.

In a cluster any node answers any request (it forwards what another node owns), so to the client
several nodes are several front doors to one service. `Nodes` is a transport that plays them:
each host (``a.test``, ``b.test``, ...) reaches the same app through `StreamingASGITransport`,
until the test changes what the node does:

- `kill`: the node is gone (SIGKILL, a lost machine): new connections are refused, a request in
  flight breaks before its answer (``RemoteProtocolError``: the server disconnected), and an
  event stream being read breaks (``ReadError``);
- `kill_after`: the node dies right after the app has handled the first request that matches,
  before its answer leaves: the request took effect, and the client never hears of it;
- `drain`: the node shuts down gracefully: its event streams end, and it refuses new requests
  with 503 ``service_closed``, as ``qmux serve`` does then.

Everything runs in one Trio run, on the virtual clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final, final

import httpx
import trio
from attrs import define, field

from qmux._remote import StreamingASGITransport
from qmux.server import QmuxApp

__all__ = ["HOSTS", "Node", "Nodes", "nodes_of"]

HOSTS: Final = ("a.test", "b.test", "c.test")
_DRAINING: Final = {"error": {"code": "service_closed", "message": "the server is shutting down", "type": "x"}}


@define(eq=False)
class Node:
    """One node's state: up, down or draining, and what it is doing now."""

    host: str
    down: bool = False
    draining: bool = False
    #: the node dies once the app has answered a request this says yes to
    dies_after: Callable[[httpx.Request], bool] | None = None
    #: a connection failure of this kind while it is down (a refusal, or a timeout: a machine gone)
    failure: type[httpx.TransportError] = httpx.ConnectError
    #: the scopes of its requests and streams in flight, cancelled when it dies
    in_flight: set[trio.CancelScope] = field(factory=set)
    #: its event streams being read, ended when it drains
    streams: set[trio.CancelScope] = field(factory=set)

    @property
    def url(self) -> str:
        return f"http://{self.host}"


@final
class Nodes(httpx.AsyncBaseTransport):
    """The client's network to the nodes of `HOSTS`: see the module's doc."""

    def __init__(self, app: QmuxApp, nursery: trio.Nursery, count: int = 2) -> None:
        self._app = StreamingASGITransport(app, nursery)
        self.nodes = {host: Node(host) for host in HOSTS[:count]}
        #: every request the client sent, in order, to whichever node
        self.sent: list[httpx.Request] = []
        #: every request that reached the app (the service saw it)
        self.reached: list[httpx.Request] = []

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes.values()]

    def __getitem__(self, host: str) -> Node:
        return self.nodes[host]

    def kill(self, host: str) -> None:
        node = self.nodes[host]
        node.down = True
        for scope in node.in_flight | node.streams:
            scope.cancel()

    def kill_after(self, host: str, matches: Callable[[httpx.Request], bool]) -> None:
        self.nodes[host].dies_after = matches

    def drain(self, host: str) -> None:
        node = self.nodes[host]
        node.draining = True
        for scope in node.streams:
            scope.cancel()

    def sent_to(self, host: str, path: str | None = None) -> list[httpx.Request]:
        return [r for r in self.sent if r.url.host == host and (path is None or r.url.path == path)]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        node = self.nodes[request.url.host]
        if node.down:
            raise node.failure("connection refused", request=request)
        if node.draining:
            return httpx.Response(503, json=_DRAINING, request=request)
        with trio.CancelScope() as scope:
            node.in_flight.add(scope)
            try:
                self.reached.append(request)
                response = await self._app.handle_async_request(request)
            finally:
                node.in_flight.discard(scope)
            if node.dies_after is not None and node.dies_after(request):
                await response.aclose()
                self.kill(node.host)
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                stream = _NodeStream(response, node)
                return httpx.Response(response.status_code, headers=response.headers, stream=stream, request=request)
            return response
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)

    async def aclose(self) -> None:
        await self._app.aclose()


@final
class _NodeStream(httpx.AsyncByteStream):
    """An event stream's body from `node`: it breaks if the node dies, and ends if it drains."""

    def __init__(self, response: httpx.Response, node: Node) -> None:
        assert isinstance(response.stream, httpx.AsyncByteStream)
        self._response, self._chunks, self._node = response, aiter(response.stream), node

    def __aiter__(self) -> _NodeStream:
        return self

    async def __anext__(self) -> bytes:
        with trio.CancelScope() as scope:
            self._node.streams.add(scope)
            try:
                if not (self._node.down or self._node.draining):
                    return await anext(self._chunks)
            finally:
                self._node.streams.discard(scope)
        if self._node.down:
            raise httpx.ReadError("connection reset by peer")
        raise StopAsyncIteration  # drained: the stream ends as a server's does when it shuts down

    async def aclose(self) -> None:
        await self._response.aclose()


@asynccontextmanager
async def nodes_of(app: QmuxApp, count: int = 2) -> AsyncIterator[Nodes]:
    """`count` nodes in front of `app`, for the block."""
    async with trio.open_nursery() as nursery:
        yield Nodes(app, nursery, count)
        nursery.cancel_scope.cancel()
