"""Shared fixtures: services to run the suite against, and scripted backends.

Time-dependent tests take pytest-trio's ``autojump_clock`` (``MockClock(autojump_threshold=0)``).

`service_factory` is parametrised over the ways to reach a service. Tests written against it
use only the public API, so the same rules are checked in process and over HTTP (where the
HTTP front door adds its parameter), and the two cannot drift.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

import qmux

from .remote_support import remote_service
from .scripted import ScriptedBackend

ServiceFactory = Callable[..., AbstractAsyncContextManager[Any]]


@asynccontextmanager
async def _local_service(
    backends: Sequence[qmux.Backend], settings: qmux.ServiceSettings | None = None
) -> AsyncIterator[qmux.Service]:
    async with qmux.open_service(backends, settings=settings) as service:
        yield service


SERVICE_KINDS: dict[str, ServiceFactory] = {"local": _local_service, "remote": remote_service}


@pytest.fixture(params=sorted(SERVICE_KINDS))
def service_factory(request: pytest.FixtureRequest) -> ServiceFactory:
    """``async with service_factory(backends, settings) as service``: local, and remote where available."""
    return SERVICE_KINDS[request.param]


def qpu(name: str = "qpu", **config: Any) -> ScriptedBackend:
    """A scripted QPU (concurrency 1) with ITTL 10 s and max_ttl 1 h unless told otherwise."""
    settings: dict[str, Any] = {"interactive_ttl": 10.0, "max_ttl": 3600.0}
    settings.update(config)
    return ScriptedBackend(name, qmux.BackendConfig(**settings))
