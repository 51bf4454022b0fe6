"""The session rules hold on a service whose journal is PostgreSQL.

The rule tests themselves are the core suite's (imported, so the two cannot drift); here their
`service_factory` is ``qmux.open_service(backends, journal=<a fresh database's URL>)``: every
submit waits for its job's commit, made in the journal's worker thread against a real server.
The virtual clock waits for those threads (`threads_hold_the_clock`), so each rule's timings
are asserted exactly as in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest

import qmux
from qmux.journal import PostgresStore
from qmux.testing import ServiceFactory

from ..core.test_session_rules import (
    test_J3_a_backend_error_fails_that_job_only,
    test_S3_session_starts_when_its_first_job_runs_not_when_opened,
    test_S8_backend_waits_the_ittl_for_the_sessions_next_job,
    test_S9_deactivated_sessions_job_waits_in_line_like_any_job,
    test_S9_ittl_expiry_hands_the_backend_on_and_the_next_job_waits_behind,
    test_S10_a_job_hanging_past_max_time_is_bounded_by_the_backends_job_timeout,
    test_S10_idle_time_counts_toward_max_time,
    test_S10_max_time_counts_from_the_first_execution_not_from_open,
    test_S10_max_time_fails_queued_jobs_and_lets_the_running_one_finish,
    test_S12_close_drains_queued_jobs_then_closes_at_once,
    test_S12_closing_with_nothing_queued_closes_at_once,
    test_S12_results_stay_retrievable_after_close,
    test_S13_cancel_fails_queued_jobs_and_lets_the_running_one_finish,
    test_S14_cancelling_the_queued_root_job_fails_the_session,
    test_S14_cancelling_the_running_root_job_stops_it_and_fails_the_session,
)
from ..core.test_supervisor import test_J4_a_thousand_clients_on_fifty_sessions_and_five_backends
from ..support.postgres import PostgresServer

__all__ = [
    "test_J3_a_backend_error_fails_that_job_only",
    "test_J4_a_thousand_clients_on_fifty_sessions_and_five_backends",
    "test_S3_session_starts_when_its_first_job_runs_not_when_opened",
    "test_S8_backend_waits_the_ittl_for_the_sessions_next_job",
    "test_S9_deactivated_sessions_job_waits_in_line_like_any_job",
    "test_S9_ittl_expiry_hands_the_backend_on_and_the_next_job_waits_behind",
    "test_S10_a_job_hanging_past_max_time_is_bounded_by_the_backends_job_timeout",
    "test_S10_idle_time_counts_toward_max_time",
    "test_S10_max_time_counts_from_the_first_execution_not_from_open",
    "test_S10_max_time_fails_queued_jobs_and_lets_the_running_one_finish",
    "test_S12_close_drains_queued_jobs_then_closes_at_once",
    "test_S12_closing_with_nothing_queued_closes_at_once",
    "test_S12_results_stay_retrievable_after_close",
    "test_S13_cancel_fails_queued_jobs_and_lets_the_running_one_finish",
    "test_S14_cancelling_the_queued_root_job_fails_the_session",
    "test_S14_cancelling_the_running_root_job_stops_it_and_fails_the_session",
]


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
