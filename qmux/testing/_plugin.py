"""qmux's pytest plugin: fixtures that run a qmux service on Trio's virtual clock.

pytest loads this module through the ``pytest11`` entry point ``qmux``, so the fixtures are
there wherever qmux is installed (``-p no:qmux`` turns them off). It only defines fixtures: no
hook, no autouse fixture, no option, no change to pytest-trio's settings, so a test that does
not ask for a ``qmux_*`` fixture runs exactly as it would without qmux. Loading it imports qmux's
core (trio, attrs, structlog, httpx), never qiskit or the HTTP server's dependencies.

The fixtures are async: they run under pytest-trio (``pip install 'qmux[testing]'``), in a test
marked ``@pytest.mark.trio`` or in ``trio_mode``. pytest-trio takes the clock from the test's own
arguments, so a test that uses a running service asks for ``autojump_clock`` too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
import trio
import trio.lowlevel
import trio.testing

import qmux

from ._scripted import qpu
from ._services import SERVICE_KINDS, AnyService, ServiceFactory, connect_in_memory, missing_server_extra


@pytest.fixture
def qmux_backends() -> Sequence[qmux.Backend]:
    """The backends the ``qmux_*`` service fixtures serve: one scripted QPU named "qpu".

    Its jobs do what their inputs say (``qmux.testing.job(...)``); ITTL 10 s, max_ttl 1 h.
    Override this fixture (in a test module or a conftest.py) to serve your own backends.
    """
    return [qpu("qpu")]


@pytest.fixture
def qmux_settings() -> qmux.ServiceSettings | None:
    """The ``qmux.ServiceSettings`` of the ``qmux_*`` service fixtures (None: qmux's defaults).

    Override this fixture to set limits, the idle-at-open delay or the shutdown grace.
    """
    return None


@pytest.fixture
async def qmux_service(
    qmux_backends: Sequence[qmux.Backend], qmux_settings: qmux.ServiceSettings | None
) -> AsyncIterator[qmux.Service]:
    """A qmux service in process, on Trio's virtual clock, serving ``qmux_backends``.

    The test must also take ``autojump_clock`` (pytest-trio's ``MockClock(autojump_threshold=0)``):
    time then jumps to the next deadline whenever every task waits, so ITTLs, max_times and job
    durations of hours pass in no real time. Closed (drained, then cancelled) after the test.
    """
    _require_virtual_clock("qmux_service")
    async with qmux.open_service(qmux_backends, settings=qmux_settings) as service:
        yield service


@pytest.fixture
def _qmux_server_extra() -> None:
    """Skips a test whose remote service needs the server extra when it is not installed.

    Synchronous on purpose: pytest-trio reports a skip raised in an async fixture without its reason.
    """
    _require_server_extra("qmux_remote_service")


@pytest.fixture
async def qmux_remote_service(
    _qmux_server_extra: None, qmux_service: qmux.Service
) -> AsyncIterator[qmux.RemoteService]:
    """The same service as ``qmux_service``, reached as a client reaches it: over its HTTP API.

    ``qmux.connect`` to ``qmux.server.create_app(qmux_service, ...)`` through an in-memory
    ``httpx.ASGITransport``: no socket, same virtual clock. The client is one tenant: it sees the
    sessions and jobs opened through it. Skipped when the server extra is not installed.
    """
    async with connect_in_memory(qmux_service) as remote:
        yield remote


@pytest.fixture(params=sorted(SERVICE_KINDS))
def qmux_service_factory(request: pytest.FixtureRequest) -> ServiceFactory:
    """``async with qmux_service_factory(backends, settings) as service``: runs the test twice.

    Once with a service in process ([local]), once with that service reached over its HTTP API
    in memory ([remote], skipped without the server extra). Code that uses only qmux's public
    API behaves the same both ways. Runs on the test's clock: take ``autojump_clock`` for virtual time.
    """
    if request.param == "remote":
        _require_server_extra("qmux_service_factory[remote]")
    return SERVICE_KINDS[request.param]


@pytest.fixture
async def qmux_any_service(
    qmux_service_factory: ServiceFactory,
    qmux_backends: Sequence[qmux.Backend],
    qmux_settings: qmux.ServiceSettings | None,
) -> AsyncIterator[AnyService]:
    """A service on ``qmux_backends`` and virtual time, reached both ways: the test runs twice.

    [local]: in process, as ``qmux_service``; [remote]: over the HTTP API in memory, as
    ``qmux_remote_service`` (skipped without the server extra). The test must also take
    ``autojump_clock``.
    """
    _require_virtual_clock("qmux_any_service")
    async with qmux_service_factory(qmux_backends, qmux_settings) as service:
        yield service


def _require_virtual_clock(fixture: str) -> None:
    if not isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock):
        pytest.fail(
            f"{fixture} runs on Trio's virtual clock: add pytest-trio's `autojump_clock` fixture to the "
            "test's arguments (pytest-trio takes the clock from the test's own arguments only)",
            pytrace=False,
        )


def _require_server_extra(fixture: str) -> None:
    reason = missing_server_extra()
    if reason is not None:
        pytest.skip(f"{fixture} {reason}")
