"""The session rules hold on a service whose journal is PostgreSQL.

The rule tests themselves are the core suite's: every one that runs on a service factory (found,
not listed, so that a new rule test runs here too, and the two cannot drift); here their
`service_factory` is ``qmux.open_service(backends, journal=<a fresh database's URL>)``: every
submit waits for its job's commit, made in the journal's worker thread against a real server.
The virtual clock waits for those threads (`threads_hold_the_clock`), so each rule's timings
are asserted exactly as in memory.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import pytest

import qmux
from qmux.journal import PostgresStore
from qmux.testing import ServiceFactory

from ..core import test_policies, test_seeing, test_session_rules, test_supervisor
from ..support.postgres import PostgresServer


def _rule_tests() -> dict[str, Callable[..., object]]:
    """Every test of the core suite that runs on a `service_factory`: this module's fixture
    replaces the core's, so each runs here on PostgreSQL, under the same name."""
    found = {}
    for module in (test_session_rules, test_policies, test_seeing, test_supervisor):
        for name, test in vars(module).items():
            if name.startswith("test_") and "service_factory" in inspect.signature(test).parameters:
                found[name] = test
    return found


globals().update(_rule_tests())


@pytest.fixture(params=["journaled"])
async def service_factory(
    postgres_server: PostgresServer, threads_hold_the_clock: None
) -> AsyncIterator[ServiceFactory]:
    """``async with service_factory(backends, settings)``: a service journaled in its own database.

    When the service has stopped, its journal must hold every job it accepted, each in a terminal
    state (SPEC J4: the journal's last word agrees with the waiters'). An async fixture so that
    pytest-trio runs `threads_hold_the_clock` with the test (it sets up only the trio fixtures
    that a test's own arguments reach).
    """
    databases: list[str] = []

    @asynccontextmanager
    async def journaled(
        backends: Sequence[qmux.Backend], settings: qmux.ServiceSettings | None = None
    ) -> AsyncIterator[qmux.Service]:
        url = postgres_server.create_database()
        databases.append(url)
        async with qmux.open_service(backends, settings=settings, journal=url) as service:
            yield service
            accepted = service.stats()["jobs"]
        store = PostgresStore(url)
        _, jobs = store.load(retain_finished=accepted + 1)
        store.close()
        assert len(jobs) >= accepted
        assert {j.status for j in jobs} <= {"DONE", "ERROR", "CANCELLED"}

    yield journaled
    for url in databases:
        postgres_server.drop_database(url)
