"""Several nodes in memory, for the tests of forwarding and fan-out: each node a service and its
app, the nodes reaching one another through one transport that routes base URLs to apps.

`FakePeers` is what the node runtime tells an app about the cluster, read off the nodes
themselves (a session's node is the one whose service holds it, a backend's the one given as
its owner or else the one that runs it), as the runtime reads it off the lease table. `Wires`
is the network between the nodes: it can take a node down (connection refused), make it fall
silent (it accepts, never answers), cut the answers being read from it, and it records every
request one node sends another.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import trio
from attrs import define, field

import qmux
from qmux._http import HttpApp
from qmux._remote import StreamingASGITransport
from qmux.server import ServerSettings, create_app

from ..support.remote import TENANTS, TOKEN

LEASE = 5.0


def url_of(name: str) -> str:
    return f"http://{name}.qmux.test"


@define(eq=False)
class Sent:
    """One request a node sent another, as it reached the wire."""

    host: str
    method: str
    path: str
    headers: httpx.Headers
    #: the query's parameters, as sent
    params: httpx.QueryParams


@define(eq=False)
class Wires(httpx.AsyncBaseTransport):
    """The network between the nodes: a base URL's host is a node's app."""

    nursery: trio.Nursery
    apps: dict[str, HttpApp] = field(factory=dict)
    #: hosts that refuse connections (a node that is down)
    down: set[str] = field(factory=set)
    #: hosts that accept and never answer (a node that hangs)
    silent: set[str] = field(factory=set)
    sent: list[Sent] = field(factory=list)
    #: answers being read, by host
    reading: dict[str, set[_Line]] = field(factory=dict)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.sent.append(Sent(host, request.method, request.url.path, request.headers, request.url.params))
        if host in self.down:
            raise httpx.ConnectError(f"connection refused by {host}", request=request)
        if host in self.silent:
            await trio.sleep_forever()
        response = await StreamingASGITransport(self.apps[host], self.nursery).handle_async_request(request)
        line = _Line(response.stream, self.reading.setdefault(host, set()))
        return httpx.Response(response.status_code, headers=response.headers, stream=line, request=request)

    def cut(self, host: str) -> None:
        """Break every answer being read from `host` (its reader gets ``httpx.ReadError``)."""
        for line in list(self.reading.get(host, ())):
            line.cut()


class _Line(httpx.AsyncByteStream):
    """An answer's body on the wire, which `Wires.cut` breaks."""

    def __init__(self, inner: Any, lines: set[_Line]) -> None:
        self._inner = inner
        self._lines = lines
        self._scope: trio.CancelScope | None = None
        self._broken = False
        lines.add(self)

    def cut(self) -> None:
        self._broken = True
        if self._scope is not None:
            self._scope.cancel()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks(self._inner.__aiter__())

    async def _chunks(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        while not self._broken:
            with trio.CancelScope() as self._scope:
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
            self._scope = None
            if self._broken:
                break
            yield chunk
        raise httpx.ReadError("the connection was cut")

    async def aclose(self) -> None:
        self._lines.discard(self)
        await self._inner.aclose()


@define(eq=False)
class Node:
    name: str
    service: qmux.Service
    app: HttpApp

    @property
    def url(self) -> str:
        return url_of(self.name)


@define(eq=False)
class Cluster:
    """The nodes, the wires between them, and who owns what."""

    wires: Wires
    nodes: dict[str, Node] = field(factory=dict)
    #: backend -> the node that holds it, where more than one node runs one of that name
    owners: dict[str, str] = field(factory=dict)
    #: nodes no longer live (their lease expired): no other node counts them
    gone: set[str] = field(factory=set)
    #: `Peers` calls made, as (node, call, argument)
    asked: list[tuple[str, str, str]] = field(factory=list)

    def client(self, name: str, token: str | None = TOKEN) -> httpx.AsyncClient:
        """A tenant's client of node `name` (answers stream)."""
        headers = {"authorization": f"Bearer {token}"} if token is not None else {}
        node = self.nodes[name]
        return httpx.AsyncClient(
            transport=StreamingASGITransport(node.app, self.wires.nursery), base_url=node.url, headers=headers
        )

    def holder(self, *, backend: str | None = None, session: str | None = None, job: str | None = None) -> str | None:
        for node in self.nodes.values():
            service = node.service
            runs = backend is not None and backend in {handle.name for handle in service.backends()}
            if runs and self.owners.get(str(backend), node.name) == node.name:
                return node.name
            if session is not None and service.session_owner(session) is not None:
                return node.name
            if job is not None and service.job_owner(job) is not None:
                return node.name
        return None


@define(eq=False)
class FakePeers:
    """What node `me` is told about the others, read off the cluster's nodes."""

    me: str
    cluster: Cluster
    lease: float = LEASE

    @property
    def node(self) -> str:
        return self.me

    def _url(self, holder: str | None) -> str | None:
        if holder is None or holder == self.me or holder in self.cluster.gone:
            return None
        return url_of(holder)

    async def owner_of_backend(self, backend: str) -> str | None:
        self.cluster.asked.append((self.me, "backend", backend))
        return self._url(self.cluster.holder(backend=backend))

    async def owner_of_session(self, session_id: str) -> str | None:
        self.cluster.asked.append((self.me, "session", session_id))
        return self._url(self.cluster.holder(session=session_id))

    async def owner_of_job(self, job_id: str) -> str | None:
        self.cluster.asked.append((self.me, "job", job_id))
        return self._url(self.cluster.holder(job=job_id))

    async def others(self) -> Mapping[str, str]:
        return {
            name: node.url
            for name, node in self.cluster.nodes.items()
            if name != self.me and name not in self.cluster.gone
        }


@asynccontextmanager
async def cluster(
    nodes: Mapping[str, Sequence[qmux.Backend]],
    *,
    owners: Mapping[str, str] | None = None,
    server: ServerSettings | None = None,
    ibm: bool = False,
    **settings: Any,
) -> AsyncIterator[Cluster]:
    """Nodes named as `nodes` says, each running its backends, wired together; `owners`: who
    holds a backend that several nodes run; `ibm`: each also serves IBM's Runtime API
    (``--ibm-compat``; a tenant's own token is its bearer token there too)."""
    async with AsyncExitStack() as stack:
        services = {
            name: await stack.enter_async_context(
                qmux.open_service(backends, settings=qmux.ServiceSettings(**settings))
            )
            for name, backends in nodes.items()
        }
        async with trio.open_nursery() as nursery:
            wires = Wires(nursery)
            found = Cluster(wires, owners=dict(owners or {}))
            for name, service in services.items():
                app = create_app(service, TENANTS, server, peers=FakePeers(name, found), peer_transport=wires)
                if ibm:
                    from qmux.ibm import mount_ibm  # needs the ibm extra: only the tests that ask for it

                    app = mount_ibm(app, service, TENANTS)
                wires.apps[httpx.URL(url_of(name)).host] = app
                found.nodes[name] = Node(name, service, app)
            try:
                yield found
            finally:
                for node in found.nodes.values():
                    await node.app.aclose()
                nursery.cancel_scope.cancel()
