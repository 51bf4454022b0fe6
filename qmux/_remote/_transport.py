"""When a request of the client is sent again, and to which node: `RetryTransport`.

HTTP policy lives in the transport, as httpx recommends. A request goes to the connection's
current node (`Nodes`). When a try fails, this table decides, from what failed and whether the
request is *idempotent* (its method is GET, HEAD, OPTIONS, PUT or DELETE, or it carries the
``qmux.idempotent`` extension: qmux's create-with-a-seed, close and cancel), whether it is sent
again and whether the connection leaves that node for the next:

=================================================  ======================  =====================
what failed                                        sent again              the node
=================================================  ======================  =====================
no connection (refused, connect timeout):          any request             left for the next
nothing was sent
the connection broke after sending (reset,         an idempotent one       left for the next
closed, a write failed): it may have been received
no answer in time (a read or write timeout)        an idempotent one,      left for the next
                                                   on another node
503 with Retry-After, or ``service_closed``:       any request             left for the next
refused before anything happened (admission, a
node shutting down, a backend between nodes)
429 with Retry-After: throttled at the door        any request             kept, after Retry-After
502, 503, 504 otherwise                            an idempotent one       kept, after a backoff
=================================================  ======================  =====================

A request that is sent again goes to the current node, or the next one it has not failed on
since its last pause; once it has failed on every node, it pauses (Retry-After, or a capped,
jittered exponential backoff) and starts another round, `retries` times at most. A request
that timed out on a node is not sent there again (it would only double the wait); with one node,
a timeout is final. Then it gives up: with the last answer, if the last try had one (the
caller makes its error of it); else raising `NodesFailed`, which names each node and why it
failed. A request that is not idempotent and may have been received is never sent again:
`OutcomeUnknown` says so at once (sending it twice could do it twice).

The answer's body is read here (an event stream's aside), so that a connection that breaks
while the answer arrives is a failed try like any other. An event stream that breaks as it is
read leaves its node, and so does one marked `ENDLESS` (one that only its node's shutting down
ends) when it ends: the stream is resumed on the next (`qmux._remote._sse`).
"""

from __future__ import annotations

import enum
import random
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Final, final

import httpx
import structlog
import trio
from attrs import define, field, frozen

from ._nodes import Nodes

__all__ = [
    "BACKOFF",
    "ENDLESS",
    "IDEMPOTENT",
    "MAX_BACKOFF",
    "NodesFailed",
    "OutcomeUnknown",
    "RetryTransport",
    "backoff_after",
    "describe",
]

_log = structlog.get_logger("qmux.remote")

#: request extension that marks a non-GET request as safe to send twice
IDEMPOTENT: Final = "qmux.idempotent"
#: request extension of an event stream that only its node's shutting down ends: its end leaves the node
ENDLESS: Final = "qmux.endless"
_IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: answered before anything happened when it carries Retry-After (rate and auth throttles): safe to resend
_THROTTLED: Final = 429
_REFUSED: Final = 503
#: the error code of a 503 that refused before acting (a server shutting down, a backend between nodes)
_REFUSED_CODE: Final = "service_closed"
_GATEWAY_STATUSES: Final = frozenset({502, 503, 504})
#: the first pause between rounds, doubled after each, and the longest (Retry-After too)
BACKOFF: Final = 0.25
MAX_BACKOFF: Final = 5.0


class Sent(enum.Enum):
    """Which requests may be sent again after a failed try."""

    ANY = "any request"
    IDEMPOTENT = "an idempotent request"


@frozen
class Step:
    """What follows a failed try: a row of the module's table."""

    again: Sent
    #: the connection leaves the node for the next
    leave: bool
    #: this request is not sent to that node again (it timed out there)
    not_here: bool = False
    #: how long the server asked to wait first (Retry-After), if it did
    wait: float | None = None

    def allows(self, *, idempotent: bool) -> bool:
        """Whether a request (`idempotent` or not) is sent again."""
        return self.again is Sent.ANY or idempotent


#: failures of the connection, most specific first
_ERROR_STEPS: Final[tuple[tuple[type[httpx.TransportError], Step], ...]] = (
    (httpx.ConnectError, Step(Sent.ANY, leave=True)),
    (httpx.ConnectTimeout, Step(Sent.ANY, leave=True)),
    (httpx.ReadTimeout, Step(Sent.IDEMPOTENT, leave=True, not_here=True)),
    (httpx.WriteTimeout, Step(Sent.IDEMPOTENT, leave=True, not_here=True)),
    (httpx.ReadError, Step(Sent.IDEMPOTENT, leave=True)),
    (httpx.WriteError, Step(Sent.IDEMPOTENT, leave=True)),
    (httpx.RemoteProtocolError, Step(Sent.IDEMPOTENT, leave=True)),
)


def step_after_error(error: httpx.TransportError) -> Step | None:
    """The step after a try that raised `error`; ``None``: not a node's failure (a pool timeout
    is this client's own congestion), raised as it is."""
    for kind, step in _ERROR_STEPS:
        if isinstance(error, kind):
            return step
    return None


def step_after_answer(response: httpx.Response, *, max_wait: float) -> Step | None:
    """The step after an answer that may say "try again"; ``None``: the answer is the answer."""
    status = response.status_code
    wait = _retry_after(response, cap=max_wait)
    if status == _THROTTLED and wait is not None:
        return Step(Sent.ANY, leave=False, wait=wait)
    if status == _REFUSED and (wait is not None or _error_code(response) == _REFUSED_CODE):
        return Step(Sent.ANY, leave=True, wait=wait)
    if status in _GATEWAY_STATUSES:
        return Step(Sent.IDEMPOTENT, leave=False, wait=wait)
    return None


class NodesFailed(httpx.TransportError):
    """A request failed on every node, as many times as it could be tried."""

    def __init__(self, failures: Sequence[tuple[str, str]], *, request: httpx.Request) -> None:
        #: (node, why) of each node it was tried on, in the order tried
        self.failures = tuple(failures)
        super().__init__("; ".join(f"{node}: {why}" for node, why in self.failures), request=request)


class OutcomeUnknown(httpx.TransportError):
    """A request that is not safe to send twice may have reached `node`, whose answer never came."""

    def __init__(self, node: str, why: str, *, request: httpx.Request) -> None:
        self.node = node
        self.why = why
        super().__init__(f"{node}: {why}", request=request)


@final
class RetryTransport(httpx.AsyncBaseTransport):
    """Sends each request to the current of `nodes` and, under the module's table, again.

    `nodes`: the connection's nodes (requests are built against the first one's URL); ``None``:
    each request goes where it is addressed, one node. `retries`: the rounds after the first;
    `backoff` and `max_backoff` bound the pauses (Retry-After too).
    """

    def __init__(
        self,
        wrapped: httpx.AsyncBaseTransport,
        *,
        nodes: Nodes | None = None,
        retries: int = 3,
        backoff: float = BACKOFF,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self._wrapped = wrapped
        self._nodes = nodes
        self._retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        nodes = self._nodes if self._nodes is not None else Nodes.addressed(request)
        idempotent = request.method in _IDEMPOTENT_METHODS or bool(request.extensions.get(IDEMPOTENT))
        tries = _Tries(len(nodes))
        while True:
            index = nodes.pick(tries.avoid)
            if index is None:  # it failed on every node it may go to since its last pause
                if tries.pauses >= self._retries or tries.everywhere_too_slow:
                    return tries.give_up(request)
                await trio.sleep(tries.pause(self._backoff, self._max_backoff))
                continue
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = await self._try(nodes, request, index)
            except httpx.TransportError as exc:
                step, outcome, why = step_after_error(exc), exc, describe(exc)
                if step is None:
                    raise
            else:
                step, why = step_after_answer(outcome, max_wait=self._max_backoff), _answered(outcome)
                if step is None or not step.allows(idempotent=idempotent):
                    return outcome
            if step.leave:
                nodes.leave(index, why)
            if isinstance(outcome, httpx.TransportError) and not step.allows(idempotent=idempotent):
                raise OutcomeUnknown(nodes.shown(index), why, request=request) from outcome  # it may have been received
            _log.debug("remote.retry", method=request.method, url=nodes.shown(index), why=why)
            if step.leave:
                tries.failed(index, nodes.shown(index), why, step, outcome)
            elif tries.pauses >= self._retries:  # an answer that keeps its node: given up
                assert isinstance(outcome, httpx.Response)
                return outcome
            else:
                await trio.sleep(tries.pause_here(step, self._backoff, self._max_backoff))

    async def _try(self, nodes: Nodes, request: httpx.Request, index: int) -> httpx.Response:
        """One try on node `index`: its answer, read unless it is an event stream."""
        response = await self._wrapped.handle_async_request(nodes.request_for(request, index))
        if _is_event_stream(response):
            endless = bool(request.extensions.get(ENDLESS))
            response.stream = _Watched(response.stream, lambda why: nodes.leave(index, why), endless=endless)
            return response
        try:
            await response.aread()
        except BaseException:
            await response.aclose()
            raise
        return response

    async def aclose(self) -> None:
        await self._wrapped.aclose()


@define
class _Tries:
    """One request's failed tries: where, why, and the pauses made."""

    nodes: int
    #: the nodes it failed on since its last pause, and those it timed out on (never again)
    avoid: set[int] = field(factory=set)
    _too_slow: set[int] = field(factory=set)
    pauses: int = 0
    #: each node's last failure, in the order the nodes were first tried
    _why: dict[int, tuple[str, str]] = field(factory=dict)
    _last_error: httpx.TransportError | None = None
    _last_answer: httpx.Response | None = None
    _wait: float | None = None

    @property
    def everywhere_too_slow(self) -> bool:
        return len(self._too_slow) == self.nodes

    def failed(
        self, index: int, node: str, why: str, step: Step, outcome: httpx.Response | httpx.TransportError
    ) -> None:
        self.avoid.add(index)
        if step.not_here:
            self._too_slow.add(index)
        self._why[index] = (node, why)
        if isinstance(outcome, httpx.Response):
            self._last_error, self._last_answer = None, outcome
        else:
            self._last_error, self._last_answer = outcome, None
        if step.wait is not None:
            self._wait = max(self._wait or 0.0, step.wait)

    def pause(self, backoff: float, cap: float) -> float:
        """Begin another round: how long to wait first."""
        wait = self._wait if self._wait is not None else backoff_after(self.pauses, backoff, cap)
        self.pauses += 1
        self.avoid = set(self._too_slow)
        self._wait = None
        return wait

    def pause_here(self, step: Step, backoff: float, cap: float) -> float:
        """Try the same node again (its answer said so): how long to wait first."""
        wait = step.wait if step.wait is not None else backoff_after(self.pauses, backoff, cap)
        self.pauses += 1
        return wait

    def give_up(self, request: httpx.Request) -> httpx.Response:
        """The last answer, if the last try had one; else `NodesFailed`, naming each node."""
        if self._last_answer is not None:
            return self._last_answer
        raise NodesFailed(list(self._why.values()), request=request) from self._last_error


def backoff_after(attempt: int, backoff: float = BACKOFF, cap: float = MAX_BACKOFF) -> float:
    """The pause after `attempt` (0, 1, ...) pauses: capped, jittered, exponential."""
    return min(cap, backoff * 2.0**attempt) * random.uniform(0.5, 1.0)


def _retry_after(response: httpx.Response, *, cap: float) -> float | None:
    value = response.headers.get("retry-after", "")
    return min(float(value), cap) if value.isdigit() else None


def _answered(response: httpx.Response) -> str:
    code = _error_code(response)
    return f"answered {response.status_code}" + (f" ({code})" if code else "")


def _error_code(response: httpx.Response) -> str | None:
    """The ``error.code`` of a qmux error answer, if it is one."""
    content_type: str = response.headers.get("content-type", "")
    if not content_type.startswith("application/json"):
        return None
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None


def _is_event_stream(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("text/event-stream")


def describe(exc: BaseException) -> str:
    """What went wrong under an httpx error, for a message: a TLS failure (an unverifiable
    certificate) says why; never a header (the token is one)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return f"TLS: {cause}"
        cause = cause.__cause__ or cause.__context__
    return f"{type(exc).__name__}: {exc}"


@final
class _Watched(httpx.AsyncByteStream):
    """An event stream's body that tells `leave` when the connection breaks as it is read, or
    when an `endless` stream ends (its node is shutting down). An iterator object, not a
    generator: a reader may stop early."""

    def __init__(
        self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, leave: Callable[[str], None], *, endless: bool
    ) -> None:
        assert isinstance(stream, httpx.AsyncByteStream)
        self._stream = stream
        self._chunks: AsyncIterator[bytes] | None = None
        self._leave = leave
        self._endless = endless
        self._closed = False  # by its reader: what follows is no news of the node

    def __aiter__(self) -> _Watched:
        return self

    async def __anext__(self) -> bytes:
        if self._chunks is None:
            self._chunks = aiter(self._stream)
        try:
            return await anext(self._chunks)
        except httpx.TransportError as exc:
            if not self._closed:
                self._leave(describe(exc))
            raise
        except StopAsyncIteration:
            if self._endless and not self._closed:
                self._leave("it ended an event stream (it is shutting down)")
            raise

    async def aclose(self) -> None:
        self._closed = True
        await self._stream.aclose()
