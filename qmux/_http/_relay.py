"""Answering on behalf of another node: relay a request to the node that holds what it names, or
fan it out to every node and merge their parts (`Relay`; what a route says is its `Locate`).

The pipeline hands a request here once it is authenticated, admitted and decoded, if the app has
`Peers` and the route a `Locate`. In order:

1. a request marked `FORWARDED_BY` (sent by a node) is answered here, never sent on;
2. the first clue the request names decides: held here (a dict lookup in the service), answered
   here; else the owner `Peers` names, if any, answers it, relayed: same method, path, query,
   body and end-to-end headers (the client's ``Authorization`` among them), marked; the owner's
   status, headers and body come back as they are, an event stream chunk by chunk. No owner:
   answered here (its 404);
3. naming nothing, on a route with a merge: every node answers its part (`_FanOut.ask`), and
   the route's merge makes one answer of them; a node that does not answer 200 within
   `FAN_OUT_SECONDS` is left out, logged, and named in the answer's `PARTIAL` header.

An owner that cannot be reached (connection refused or timed out) answers 503 with Retry-After:
its lease is what moves its backends, so the client comes back after about a lease. An owner
that was reached but did not answer in time (or broke off) answers 504: the request may have
taken effect there, so only an idempotent request is safe to send again.

One `httpx.AsyncClient` per app: pooled, kept-alive connections, never a proxy from the
environment, bounded waits: `CONNECT_SECONDS` to connect, and the server's long-poll limit plus
`GRACE_SECONDS` for a whole answer (an event stream's head), and between two chunks of an event
stream the longer of that and `KEEPALIVE_SECONDS` plus the grace (its owner sends a keepalive at
least that often). The whole answer's bound is kept with Trio's clock too, so that it holds over
any transport (tests route requests to apps in memory).
"""

from __future__ import annotations

import contextlib
import math
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from typing import Final, final

import attrs
import httpx
import structlog
import trio
from attrs import define, field

from .._core import BackendUnavailableError
from ._forwarding import FORWARDED_BY, PARTIAL, Kind, Merge, Peers
from ._messages import HttpError, Reply, Request, Scope, header
from ._routing import Route
from ._sse import KEEPALIVE_SECONDS
from ._view import ServiceView

__all__ = ["CONNECT_SECONDS", "FAN_OUT_SECONDS", "GRACE_SECONDS", "Relay", "close_response"]

_log = structlog.get_logger("qmux.http")

#: the longest a connection to another node may take to open; then the node is unreachable (503)
CONNECT_SECONDS: Final = 2.0
#: the longest a node may take to answer its part of a fanned-out request; then it is left out
FAN_OUT_SECONDS: Final = 5.0
#: what a relayed answer may take beyond the server's long-poll limit (a long poll is held that long)
GRACE_SECONDS: Final = 10.0
#: idle connections kept open to the other nodes, at most
KEEPALIVE_CONNECTIONS: Final = 32
#: the longest closing a relayed response may take
_CLOSE_SECONDS: Final = 1.0

_FORWARDED_BY: Final = FORWARDED_BY.encode("latin-1")
#: request headers not sent on: hop-by-hop ones, and those the sending client writes itself
_NOT_SENT_ON: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        _FORWARDED_BY,
    }
)
#: answer headers not relayed back: hop-by-hop ones, and those this node's server and pipeline write
_NOT_RELAYED: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "cache-control",
        "date",
        "server",
    }
)
#: the connection could not be opened: nothing reached the owner
_UNREACHABLE: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@final
@define(eq=False)
class Relay:
    """What an app with `Peers` does with a request that has a `Locate` (see the module's doc)."""

    peers: Peers
    view: ServiceView
    #: the one client this app sends other nodes requests with
    client: httpx.AsyncClient
    fan_out_seconds: float = FAN_OUT_SECONDS

    @classmethod
    def of(cls, peers: Peers, view: ServiceView, *, transport: httpx.AsyncBaseTransport | None = None) -> Relay:
        """A relay for `view`'s server; `transport`: how it reaches the other nodes (default: the network)."""
        client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(
                max(view.limits.long_poll, KEEPALIVE_SECONDS) + GRACE_SECONDS, connect=CONNECT_SECONDS
            ),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=KEEPALIVE_CONNECTIONS),
            trust_env=False,  # node to node: never through a proxy the environment names
        )
        return cls(peers, view, client)

    @property
    def answer_seconds(self) -> float:
        """The longest a relayed answer (an event stream's head) may take: a long poll, and the grace."""
        return self.view.limits.long_poll + GRACE_SECONDS

    async def aclose(self) -> None:
        await self.client.aclose()

    async def answer(self, handlers: object, route: Route, request: Request, raw: bytes, scope: Scope) -> Reply:
        """The answer to `request` (`raw`: its body as it came), from the node that holds what it names."""
        locate = route.locate
        if locate is not None and header(scope, _FORWARDED_BY) is None:
            for clue in locate.clues:
                value = clue.value(request)
                if value is None:
                    continue
                if not self._holds(clue.kind, value):
                    owner = await self._owner(clue.kind, value)
                    if owner is not None:
                        return await self.forward(owner, scope, raw)
                break
            else:
                if locate.merge is not None:
                    return await self._fan_out(locate.merge, handlers, route, request, scope)
        return await route.handler(handlers, request)

    def _holds(self, kind: Kind, value: str) -> bool:
        if kind == "session":
            return self.view.holds_session(value)
        if kind == "job":
            return self.view.holds_job(value)
        return self.view.holds_backend(value)

    async def _owner(self, kind: Kind, value: str) -> str | None:
        if kind == "session":
            return await self.peers.owner_of_session(value)
        if kind == "job":
            return await self.peers.owner_of_job(value)
        return await self.peers.owner_of_backend(value)

    # -- one owner ---------------------------------------------------------------------------

    async def forward(self, url: str, scope: Scope, raw: bytes) -> Reply:
        """The owner's answer to the request, relayed as it is (an event stream as it comes)."""
        request = self.build(url, scope, raw)
        response: httpx.Response | None = None
        try:
            with trio.fail_after(self.answer_seconds):
                response = await self.client.send(request, stream=True)
                if not _is_stream(response):
                    await response.aread()
        except _UNREACHABLE as exc:
            raise self._unreachable(url, exc) from exc
        except (httpx.HTTPError, trio.TooSlowError) as exc:
            if response is not None:
                await close_response(response)
            raise self._broke_off(url, exc) from exc
        headers = _relayed_headers(response)
        if _is_stream(response):
            return Reply.streaming(response.status_code, _Relayed(response, url), headers=headers, via=url)
        await close_response(response)
        return Reply(response.status_code, response.content, headers, via=url)

    def build(
        self,
        url: str,
        scope: Scope,
        raw: bytes,
        replace: Mapping[str, str | None] | None = None,
        query_params: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        """The request of `scope` (body `raw`) for the node at base URL `url`, marked as sent by this
        node; `replace`: headers set (``None``: dropped), `query_params`: query parameters set, each
        in place of the client's of the same name."""
        base = httpx.URL(url)
        path = scope.get("raw_path") or urllib.parse.quote(scope["path"]).encode("ascii")
        query = bytes(scope.get("query_string", b""))
        if query_params:
            query = _with_params(query, query_params)
        target = base.copy_with(raw_path=base.raw_path.rstrip(b"/") + path + (b"?" + query if query else b""))
        replace = replace or {}
        dropped = _NOT_SENT_ON | {name.encode("latin-1") for name in replace} if replace else _NOT_SENT_ON
        headers = [(name, value) for name, value in scope["headers"] if name not in dropped]
        headers += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in replace.items() if value]
        headers.append((_FORWARDED_BY, self.peers.node.encode("latin-1")))
        return self.client.build_request(scope["method"], target, headers=headers, content=raw)

    def _unreachable(self, url: str, exc: Exception) -> HttpError:
        lease = self.peers.lease
        _log.warning("http.forward_unreachable", node=url, error=type(exc).__name__)
        return HttpError(
            503,
            BackendUnavailableError(
                f"the node that holds this ({url}) cannot be reached ({type(exc).__name__}); if it is down, its "
                f"backends move to a live node once its lease ({lease:g} s) expires: retry then"
            ),
            code="node_unreachable",
            headers={"retry-after": str(max(1, math.ceil(lease)))},
        )

    def _broke_off(self, url: str, exc: Exception) -> HttpError:
        _log.warning("http.forward_failed", node=url, error=type(exc).__name__)
        what = "did not answer in time" if isinstance(exc, trio.TooSlowError | httpx.TimeoutException) else "broke off"
        return HttpError(
            504,
            BackendUnavailableError(
                f"the node that holds this ({url}) {what} ({type(exc).__name__}); the request may have taken "
                "effect there: look before sending it again"
            ),
            code="node_timeout",
            headers={"retry-after": str(max(1, math.ceil(self.peers.lease)))},
        )

    # -- every node --------------------------------------------------------------------------

    async def _fan_out(self, merge: Merge, handlers: object, route: Route, request: Request, scope: Scope) -> Reply:
        fan = _FanOut(self, handlers, route, request, scope)
        reply = await merge(fan)
        if fan.missing:
            names = ", ".join(urllib.parse.quote(name, safe="") for name in fan.missing)
            reply = attrs.evolve(reply, headers={**reply.headers, PARTIAL: names})
        return reply


@final
@define(eq=False)
class _FanOut:
    """One fanned-out request (`qmux._http.FanOut`): this node's part, and the others' as they answer."""

    relay: Relay
    handlers: object
    route: Route
    request: Request
    scope: Scope
    #: the nodes left out, in the order they were
    missing: list[str] = field(factory=list)

    @property
    def peers(self) -> Peers:
        return self.relay.peers

    async def local(self, request: Request | None = None) -> Reply:
        return await self.route.handler(self.handlers, request if request is not None else self.request)

    async def others(self) -> Mapping[str, str]:
        return await self.relay.peers.others()

    async def ask(
        self,
        node: str,
        url: str,
        *,
        headers: Mapping[str, str | None] | None = None,
        query: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response | None:
        relay = self.relay
        request = relay.build(url, self.scope, b"", headers, query)
        response: httpx.Response | None = None
        answered = False
        reason = f"no answer within {relay.fan_out_seconds:g} s"
        try:
            with trio.move_on_after(relay.fan_out_seconds):
                response = await relay.client.send(request, stream=True)
                if response.status_code != 200:
                    reason = f"answered {response.status_code}"
                elif not stream:
                    await response.aread()
                    answered = True
                else:
                    answered = True
        except httpx.HTTPError as exc:
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            if response is not None and (not answered or not stream):
                await close_response(response)
        if answered:
            return response
        self.left_out(node, f"{url} {reason}")
        return None

    def left_out(self, node: str, reason: str) -> None:
        _log.warning("http.fan_out_left_out", node=node, route=self.route.operation_id, reason=reason)
        if node not in self.missing:
            self.missing.append(node)


@final
class _Relayed:
    """The body of an event stream relayed from its owner, chunk by chunk as they come."""

    def __init__(self, response: httpx.Response, url: str) -> None:
        self._response = response
        self._url = url
        self._chunks: AsyncIterator[bytes] | None = None

    def __aiter__(self) -> _Relayed:
        return self

    async def __anext__(self) -> bytes:
        if self._chunks is None:
            self._chunks = self._response.aiter_raw()
        try:
            return await anext(self._chunks)
        except httpx.HTTPError as exc:  # the owner went away or fell silent: the stream ends, the client resumes
            _log.warning("http.forward_stream_ended", node=self._url, error=type(exc).__name__)
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await close_response(self._response, self._chunks)


async def close_response(response: httpx.Response, chunks: AsyncIterator[bytes] | None = None) -> None:
    """Close `response` (shielded, bounded), and read `chunks`, its body's iterator if one was
    begun, to the end it then has at once: httpx reads a body through a chain of async
    generators, and one left suspended would be finalized by the garbage collector."""
    with trio.CancelScope(shield=True), trio.move_on_after(_CLOSE_SECONDS):
        await response.aclose()
        if chunks is not None:
            with contextlib.suppress(Exception):
                async for _ in chunks:
                    pass


def _with_params(query: bytes, params: Mapping[str, str]) -> bytes:
    """The query string `query` with `params` set: the client's parameters of those names dropped,
    the others kept as they came."""
    kept = [
        pair
        for pair in query.split(b"&")
        if pair and urllib.parse.unquote_plus(pair.partition(b"=")[0].decode("latin-1")) not in params
    ]
    kept.append(urllib.parse.urlencode(params).encode("ascii"))
    return b"&".join(kept)


def _is_stream(response: httpx.Response) -> bool:
    kind: str = response.headers.get("content-type", "")
    return kind.startswith("text/event-stream")


def _relayed_headers(response: httpx.Response) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        if name not in _NOT_RELAYED:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers
