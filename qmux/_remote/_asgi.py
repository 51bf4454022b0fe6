"""An httpx transport that calls an ASGI app in memory and streams its answers as they are sent.

``httpx.ASGITransport`` runs the app to the end before it returns the response, so an answer
that is a stream (Server-Sent Events) never arrives while it flows. `StreamingASGITransport`
runs each request's app call as a task in a nursery the caller owns and hands the body over
chunk by chunk through a small bounded channel (a slow reader holds the app's ``send`` back, as
a socket would). Closing the response tells the app ``http.disconnect``, as a client that hangs
up does. Everything stays in one Trio run, so a virtual clock drives client and server alike:
it is how ``qmux.testing`` reaches a service over HTTP with no socket.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, final

import httpx
import trio

__all__ = ["StreamingASGITransport"]

Message = MutableMapping[str, Any]
App = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Any]

#: body messages the app may send ahead of the reader
_AHEAD: Final = 16


@final
class StreamingASGITransport(httpx.AsyncBaseTransport):
    """Serve requests with the ASGI `app`, running each call in `nursery`; bodies stream."""

    def __init__(self, app: App, nursery: trio.Nursery, *, client: tuple[str, int] = ("127.0.0.1", 123)) -> None:
        self._app = app
        self._nursery = nursery
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(key.lower(), value) for key, value in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": self._client,
            "root_path": "",
        }
        call = _Call(body)
        self._nursery.start_soon(call.run, self._app, scope, name=f"asgi {request.method} {request.url.path}")
        try:
            start = await call.start()
        except BaseException:
            call.hang_up()
            raise
        headers = [(bytes(key), bytes(value)) for key, value in start.get("headers", [])]
        return httpx.Response(start["status"], headers=headers, stream=_Body(call), request=request)


@final
class _Call:
    """One request's app call: the request body going in, the answer's messages coming out."""

    def __init__(self, body: bytes) -> None:
        self._body: bytes | None = body
        self._gone = trio.Event()
        self._out, self.messages = trio.open_memory_channel[Message](_AHEAD)
        self.error: BaseException | None = None

    async def run(self, app: App, scope: MutableMapping[str, Any]) -> None:
        with self._out:
            try:
                await app(scope, self._receive, self._send)
            except Exception as exc:  # handed to the request that waits for it, not the nursery's
                self.error = exc

    async def _receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if self._gone.is_set():
            return  # the client hung up: what the app still sends goes nowhere
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):  # the reader hung up
            await self._out.send(message)

    async def start(self) -> Message:
        """The ``http.response.start`` message, once the app sends it."""
        async for message in self.messages:
            if message["type"] == "http.response.start":
                return message
        if self.error is not None:
            raise self.error
        raise httpx.RemoteProtocolError("the app ended without answering")

    def hang_up(self) -> None:
        """The client is done with the answer: the app's ``receive`` says ``http.disconnect``."""
        self._gone.set()
        self.messages.close()


@final
class _Body(httpx.AsyncByteStream):
    """The answer's body, chunk by chunk (an iterator object, not a generator: a reader may stop early)."""

    def __init__(self, call: _Call) -> None:
        self._call = call
        self._done = False

    def __aiter__(self) -> _Body:
        return self

    async def __anext__(self) -> bytes:
        while not self._done:
            try:
                message = await self._call.messages.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                self._done = True
                if self._call.error is not None:
                    raise httpx.ReadError(f"the app failed while answering: {self._call.error!r}") from None
                break
            if message["type"] != "http.response.body":
                continue
            self._done = not message.get("more_body", False)
            if chunk := message.get("body", b""):
                return bytes(chunk)
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._call.hang_up()
