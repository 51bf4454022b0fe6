"""qmux.testing's deadline helpers: virtual time to just before / just after a session's ITTL (SPEC
S8, S9) or max_time (S10), read from its details(), in process and over HTTP."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import qmux
from qmux.testing import (
    MARGIN,
    ServiceFactory,
    ittl_deadline,
    job,
    just_after_ittl,
    just_after_max_time,
    just_before_ittl,
    just_before_max_time,
    max_time_deadline,
    qpu,
)

Clock = trio.testing.MockClock


async def _start_late(service: qmux.Service | qmux.RemoteService, **open_kwargs: object) -> qmux.Session:
    """A session whose first job waits 20 s behind a job-mode job, then runs 5 s: started at 20."""
    await service.backend("q").run("x", job(20))
    session = qmux.Session(service=service, backend="q", **open_kwargs)  # type: ignore[arg-type]
    await (await session.run("x", job(5))).result()
    assert trio.current_time() == pytest.approx(25)
    return session


async def test_S8_just_before_the_ittl_the_session_still_holds_its_backend(
    autojump_clock: Clock, qmux_service_factory: ServiceFactory
) -> None:
    async with qmux_service_factory([qpu("q", interactive_ttl=10)]) as service:
        session = await _start_late(service)
        assert await ittl_deadline(session) == pytest.approx(35, abs=1e-5)
        deadline = await just_before_ittl(session)
        assert deadline == pytest.approx(35, abs=1e-5)
        assert trio.current_time() == pytest.approx(35 - MARGIN, abs=1e-5)
        assert (await session.details())["state"] == "active"
        await session.close()


async def test_S9_just_after_the_ittl_the_session_is_deactivated(
    autojump_clock: Clock, qmux_service_factory: ServiceFactory
) -> None:
    async with qmux_service_factory([qpu("q", interactive_ttl=10)]) as service:
        session = await _start_late(service)
        assert await just_after_ittl(session, margin=0.5) == pytest.approx(35, abs=1e-5)
        assert trio.current_time() == pytest.approx(35.5, abs=1e-5)
        details = await session.details()
        assert (details["state"], await session.status()) == ("inactive", "Pending")
        await session.close()


async def test_S10_just_before_and_after_max_time(autojump_clock: Clock, qmux_service_factory: ServiceFactory) -> None:
    async with qmux_service_factory([qpu("q", interactive_ttl=10)]) as service:
        session = await _start_late(service, max_time=100)
        assert await max_time_deadline(session) == pytest.approx(120)  # from its start at 20 (S3)
        await just_before_max_time(session, margin=2)
        assert trio.current_time() == pytest.approx(118)
        details = await session.details()
        assert (details["state"], details["accepting_jobs"]) == ("inactive", True)  # the ITTL passed long ago
        assert await just_after_max_time(session) == pytest.approx(120)
        details = await session.details()
        assert (details["state"], details["closed_reason"]) == ("closed", "max_time")
        with pytest.raises(qmux.SessionClosedError):
            await session.run("x", job())


async def test_the_ittl_has_no_deadline_while_a_job_runs_or_before_the_start(
    autojump_clock: Clock, qmux_service_factory: ServiceFactory
) -> None:
    async with qmux_service_factory([qpu("q", interactive_ttl=10)]) as service:
        session = qmux.Session(service=service, backend="q")
        with pytest.raises(AssertionError, match=r"has not started: its clocks start with its first job \(SPEC S3\)"):
            await ittl_deadline(session)
        with pytest.raises(AssertionError, match="has not started"):
            await just_before_max_time(session)
        running = await session.run("x", job(5))
        await trio.sleep(1)
        with pytest.raises(AssertionError, match=r"has a job running .*its ITTL starts when its last job finishes"):
            await just_before_ittl(session)
        await running.result()
        await just_after_ittl(session)
        with pytest.raises(AssertionError, match=r"no ITTL running: it is 'inactive'"):
            await ittl_deadline(session)
        await session.close()
        with pytest.raises(AssertionError, match=r"is closed \(closed\): no deadline is left"):
            await max_time_deadline(session)


async def test_too_late_for_just_before_is_an_error_not_a_silent_pass(autojump_clock: Clock) -> None:
    async with qmux.open_service([qpu("q", interactive_ttl=10)]) as service:
        session = qmux.Session(service=service, backend="q")
        await (await session.run("x", job(1))).result()
        await just_before_ittl(session)
        with pytest.raises(AssertionError, match=r"only 0\.001000 s are left before its ITTL runs out"):
            await just_before_ittl(session, margin=0.5)
        assert (await session.details())["state"] == "active"  # and no time passed
        await session.close()


@pytest.mark.parametrize("margin", [0, -1, float("inf"), True, "1"])
async def test_a_margin_must_be_a_positive_number_of_seconds(autojump_clock: Clock, margin: object) -> None:
    async with qmux.open_service([qpu("q")]) as service:
        session = qmux.Session(service=service, backend="q")
        await (await session.run("x", job(1))).result()
        with pytest.raises(qmux.InvalidInputError, match=r"margin=.*: expected a positive number of seconds"):
            await just_after_ittl(session, margin=margin)  # type: ignore[arg-type]
        await session.close()
