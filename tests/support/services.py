"""The ways to reach a service that rule tests run against: in process, and over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import qmux

from .remote import remote_service

__all__ = ["SERVICE_KINDS", "ServiceFactory"]

ServiceFactory = Callable[..., AbstractAsyncContextManager[Any]]


@asynccontextmanager
async def _local_service(
    backends: Sequence[qmux.Backend], settings: qmux.ServiceSettings | None = None
) -> AsyncIterator[qmux.Service]:
    async with qmux.open_service(backends, settings=settings) as service:
        yield service


SERVICE_KINDS: dict[str, ServiceFactory] = {"local": _local_service, "remote": remote_service}
