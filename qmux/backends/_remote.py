"""A backend that is another qmux server: each job runs there, in job mode, over HTTP.

It lets one qmux process front several others (a lab's QPU hosts, say) with the same session
rules: the local service keeps the sessions, ITTL and max_time; the remote one runs the jobs.
Cancelling a job here cancels it there. Whatever the remote side or the network does wrong
fails that job only (SPEC J3), with the remote error as its cause; retries of idempotent calls
on connection errors and 502/503/504 happen in the client's transport.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, final

import httpx
import trio

from .._core import BackendConfig, BackendUnavailableError, JobRequest

if TYPE_CHECKING:
    from .._remote._client import RemoteService

__all__ = ["RemoteBackend"]


@final
class RemoteBackend:
    """A backend named `name` here, running its jobs on backend `remote_name` of the server at `url`
    (or of a cluster: several nodes' URLs, as ``qmux.connect`` takes them).

    `config` defaults to the remote backend's own. It is an async context manager: the service
    enters it on start (connecting) and leaves it on shutdown.
    """

    def __init__(
        self,
        name: str,
        url: str | Sequence[str],
        *,
        token: str | None = None,
        remote_name: str | None = None,
        config: BackendConfig | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.url = url if isinstance(url, str) else ",".join(url)
        self.remote_name = remote_name or name
        self._config = config
        self._token, self._timeout, self._retries, self._transport = token, timeout, retries, transport
        self._service: RemoteService | None = None
        self._stack = AsyncExitStack()

    @property
    def config(self) -> BackendConfig:
        if self._config is None:
            raise BackendUnavailableError(
                f"remote backend {self.name!r} has not connected yet: its configuration comes from {self.url}"
            )
        return self._config

    async def __aenter__(self) -> RemoteBackend:
        from .._remote._client import connect

        service = await self._stack.enter_async_context(
            connect(
                self.url, token=self._token, timeout=self._timeout, retries=self._retries, transport=self._transport
            )
        )
        if self._config is None:
            self._config = service.backend(self.remote_name).config
        self._service = service
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._service = None
        await self._stack.aclose()

    async def execute(self, request: JobRequest) -> object:
        if self._service is None:
            raise BackendUnavailableError(f"remote backend {self.name!r} is not connected")
        remote = await self._service.submit_job(
            self.remote_name, request.program_id, request.inputs, dict(request.options)
        )
        try:
            return await remote.get_result()
        except trio.Cancelled:
            with trio.CancelScope(shield=True), trio.move_on_after(10):
                await remote.cancel()  # stop it there too (SPEC J2)
            raise
