"""Every node's events as one stream (SPEC E1): ``GET /events`` naming no session, job or backend.

Each node's hub numbers its own events (``seq``), so one number cannot say where a client is in
several streams. The merged stream's SSE ``id`` is a vector: the last seq seen of each node, as
``name=seq`` pairs (names percent-encoded) joined by commas, e.g. ``id: node-a=41,node-b=7``.
A client that resumes with it as ``Last-Event-ID`` (as a browser's EventSource and qmux's client
do, on any node) has each node's stream resumed after that node's own seq: what each hub's
history still holds is replayed, and a ``lagged`` event says what is gone, as with one node. A
plain number, the id one node alone gives, is the seq of the node the client reached. A node
the client's id does not name is resumed from where the stream began in it (each node's stream
says where, `EVENT_SEQ_HEADER`), and the stream's first message, an ``id`` alone, gives the
client that vector at once: a client that resumes misses nothing any node's history still holds.

The stream follows the nodes as they come and go. A node that joins is followed from when it is
seen (`MEMBERSHIP_SECONDS`; what it published before is not in the stream). A node whose stream
ends or breaks is asked again after a pause, resuming after its last seq, for as long as `Peers`
counts it live; a node that is no longer live is let go (its backends, and their events, are
another node's by then). The merged stream ends when this node's own stream does (this node
shutting down, as one node's stream ends), and the client resumes it elsewhere.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Final, final

import attrs
import httpx
import outcome
import structlog
import trio
from attrs import frozen

from ._forwarding import FanOut
from ._messages import Producer, Reply, Request, capture
from ._relay import close_response
from ._sse import EVENT_SEQ_HEADER, RETRY_MILLISECONDS

__all__ = ["MEMBERSHIP_SECONDS", "MergedEvents", "resume_id", "resume_point"]

_log = structlog.get_logger("qmux.http")

#: how often a merged stream looks for nodes that joined
MEMBERSHIP_SECONDS: Final = 2.0
#: the pause before a node's stream is asked again, doubled after each try that read nothing, at most
_BACKOFF: Final = 0.5
_MAX_BACKOFF: Final = 5.0
#: the most an event may take on the wire: a node that sends more without an end is cut off
_MAX_EVENT_BYTES: Final = 1 << 20
_SEQ: Final = re.compile(r"[0-9]{1,19}")

Send = Callable[[bytes], Awaitable[None]]


def resume_point(last_event_id: str | None, node: str) -> dict[str, int]:
    """Each node's seq a client resumes after, from its ``Last-Event-ID`` (see the module's doc);
    parts that are no ``name=seq`` are ignored, as SSE ignores an id it cannot use."""
    if last_event_id is None:
        return {}
    value = last_event_id.strip()
    if _SEQ.fullmatch(value):
        return {node: int(value)}
    seqs: dict[str, int] = {}
    for pair in value.split(","):
        name, _, seq = pair.partition("=")
        if name and _SEQ.fullmatch(seq):
            seqs[urllib.parse.unquote(name)] = int(seq)
    return seqs


def resume_id(seqs: Mapping[str, int]) -> str:
    """The merged stream's event id: each node's last seq (`resume_point` reads it back)."""
    return ",".join(f"{urllib.parse.quote(name, safe='')}={seq}" for name, seq in sorted(seqs.items()))


def _with_last_event_id(request: Request, seq: int | None) -> Request:
    headers = [(name, value) for name, value in request.raw_headers if name != b"last-event-id"]
    if seq is not None:
        headers.append((b"last-event-id", str(seq).encode("ascii")))
    return attrs.evolve(request, raw_headers=headers)


def _begin(seqs: dict[str, int], node: str, start: str | None) -> None:
    """Where `node`'s stream began (its `EVENT_SEQ_HEADER`), unless the client resumes it elsewhere."""
    if node not in seqs and start is not None and _SEQ.fullmatch(start):
        seqs[node] = int(start)


def _seq_header(seq: int | None) -> dict[str, str | None]:
    return {"last-event-id": None if seq is None else str(seq)}


@final
@frozen
class MergedEvents:
    """The merge of ``GET /events``: every node's stream, followed as one (see the module's doc)."""

    async def __call__(self, fan: FanOut) -> Reply:
        me = fan.peers.node
        seqs = resume_point(fan.request.header("last-event-id"), me)
        others = dict(await fan.others())
        opened: dict[str, httpx.Response] = {}

        async def open_stream(name: str, url: str) -> None:
            response = await fan.ask(name, url, headers=_seq_header(seqs.get(name)), stream=True)
            if response is not None:
                opened[name] = response

        try:
            async with trio.open_nursery() as nursery:
                for name, url in others.items():
                    nursery.start_soon(open_stream, name, url)
                local = await capture(fan.local(_with_last_event_id(fan.request, seqs.get(me))))
                if isinstance(local, outcome.Error):
                    nursery.cancel_scope.cancel()
            reply = local.unwrap()
            if reply.status != 200 or reply.stream is None:
                for response in opened.values():
                    await close_response(response)
                return reply
        except BaseException:
            for response in opened.values():
                await close_response(response)
            raise
        _begin(seqs, me, reply.headers.get(EVENT_SEQ_HEADER))
        for name, response in opened.items():
            _begin(seqs, name, response.headers.get(EVENT_SEQ_HEADER))
        merged = _Merged(fan, reply.stream, opened, others, seqs)
        return Reply.streaming(200, merged, headers=reply.headers, keepalive=reply.keepalive)


@final
class _Merged(Producer):
    """One merged stream: a task per node, each sending its node's events, their ids made vectors."""

    def __init__(
        self,
        fan: FanOut,
        local: AsyncIterator[bytes] | Producer,
        opened: dict[str, httpx.Response],
        members: Mapping[str, str],
        seqs: dict[str, int],
    ) -> None:
        self._fan = fan
        self._local = local
        self._opened = opened
        self._members = members
        self._seqs = seqs
        self._following: set[str] = set()

    async def produce(self, send: Send) -> None:
        head = f"retry: {RETRY_MILLISECONDS}\n\n"
        if self._seqs:  # an id alone: the client's place in every node's stream, before any event
            head += f"id: {resume_id(self._seqs)}\n\n"
        await send(head.encode("ascii"))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._follow_local, send, nursery.cancel_scope)
            for name, url in self._members.items():
                self._start(nursery, send, name, url, self._opened.pop(name, None))
            nursery.start_soon(self._watch, nursery, send)

    async def aclose(self) -> None:
        for response in self._opened.values():
            await close_response(response)
        self._opened.clear()
        aclose = getattr(self._local, "aclose", None)
        if aclose is not None:
            await aclose()

    def _start(self, nursery: trio.Nursery, send: Send, name: str, url: str, response: httpx.Response | None) -> None:
        self._following.add(name)
        nursery.start_soon(self._follow, send, name, url, response, name=f"qmux events of node {name}")

    async def _follow_local(self, send: Send, scope: trio.CancelScope) -> None:
        """This node's own events, until its stream ends, which ends the merged stream."""
        node = self._fan.peers.node
        blocks = _Blocks()

        async def take(chunk: bytes) -> None:
            for block in blocks.feed(chunk):
                out = self._rewrite(node, block)
                if out is not None:
                    await send(out)

        if isinstance(self._local, Producer):
            await self._local.produce(take)
        else:
            async for chunk in self._local:
                await take(chunk)
        scope.cancel()

    async def _follow(self, send: Send, name: str, url: str, response: httpx.Response | None) -> None:
        """Node `name`'s events, asked again after each end, while it is live."""
        pause = _BACKOFF
        try:
            while True:
                if response is None:
                    response = await self._fan.ask(name, url, headers=_seq_header(self._seqs.get(name)), stream=True)
                    if response is not None:
                        _begin(self._seqs, name, response.headers.get(EVENT_SEQ_HEADER))
                if response is not None:
                    if await self._pump(send, name, response):
                        pause = _BACKOFF
                    response = None
                await trio.sleep(pause)
                pause = min(_MAX_BACKOFF, pause * 2)
                live = await self._live()
                if live is None:
                    continue
                if name not in live:
                    _log.info("http.events_node_left", node=name)
                    return
                url = live[name]
        finally:
            if response is not None:
                await close_response(response)
            self._following.discard(name)

    async def _pump(self, send: Send, name: str, response: httpx.Response) -> bool:
        """Send `response`'s events until it ends; whether it carried any."""
        blocks = _Blocks()
        chunks = response.aiter_raw()
        carried = False
        try:
            async for chunk in chunks:
                for block in blocks.feed(chunk):
                    out = self._rewrite(name, block)
                    if out is not None:
                        carried = True
                        await send(out)
        except (httpx.HTTPError, _TooLong) as exc:
            _log.warning("http.events_node_broke_off", node=name, error=type(exc).__name__)
        finally:
            await close_response(response, chunks)
        return carried

    async def _watch(self, nursery: trio.Nursery, send: Send) -> None:
        """Follow each node that joins, from when it is seen."""
        while True:
            await trio.sleep(MEMBERSHIP_SECONDS)
            for name, url in (await self._live() or {}).items():
                if name not in self._following:
                    _log.info("http.events_node_joined", node=name)
                    self._start(nursery, send, name, url, None)

    async def _live(self) -> Mapping[str, str] | None:
        """The other live nodes; ``None`` if `Peers` cannot say now (logged)."""
        try:
            return await self._fan.others()
        except Exception as exc:
            _log.warning("http.events_peers_failed", exc_info=exc)
            return None

    def _rewrite(self, node: str, block: bytes) -> bytes | None:
        """One SSE message of `node`'s, its id made the merged stream's; ``None`` for a comment or ``retry``."""
        lines: list[bytes] = []
        for line in block.split(b"\n"):
            if line.startswith((b":", b"retry:")):
                continue
            if line.startswith(b"id:"):
                seq = line[3:].strip().decode("latin-1")
                if _SEQ.fullmatch(seq):
                    self._seqs[node] = int(seq)
                    lines.append(b"id: " + resume_id(self._seqs).encode("ascii"))
                continue
            lines.append(line)
        return b"\n".join(lines) + b"\n\n" if lines else None


class _TooLong(Exception):
    """A node sent more than an event may take without ending it."""


@final
class _Blocks:
    """SSE messages out of chunks cut anywhere: each message whole, without its blank line."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        *blocks, self._buffer = (self._buffer + chunk).split(b"\n\n")
        if len(self._buffer) > _MAX_EVENT_BYTES:
            raise _TooLong(f"more than {_MAX_EVENT_BYTES} bytes without the end of an event")
        return [block.lstrip(b"\n") for block in blocks if block.strip(b"\n")]
