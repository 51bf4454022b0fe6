"""qmux.testing's history helpers over details()["timestamps"] (SPEC S18), in process and over HTTP."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import trio
import trio.testing

import qmux
from qmux.testing import ServiceFactory, StateChange, assert_history, history, job, just_after_ittl, qpu

Clock = trio.testing.MockClock


async def _deactivated_then_closed(service: qmux.Service | qmux.RemoteService) -> qmux.Session:
    """open at 0, active at 3 (behind a 3 s job-mode job), inactive at 18 (5 s job + ITTL 10), closed at 20."""
    await service.backend("q").run("x", job(3))
    session = qmux.Session(service=service, backend="q")
    await (await session.run("x", job(5))).result()
    await just_after_ittl(session)
    await trio.sleep(2 - 0.001)
    await session.close()
    return session


async def test_history_lists_every_state_change_timed_from_the_opening(
    autojump_clock: Clock, qmux_service_factory: ServiceFactory
) -> None:
    async with qmux_service_factory([qpu("q", interactive_ttl=10)]) as service:
        session = await _deactivated_then_closed(service)
        changes = await history(session)
    assert [(c.status, c.seconds) for c in changes] == [
        ("open", 0),
        ("active", pytest.approx(3)),
        ("inactive", pytest.approx(18)),
        ("closed", pytest.approx(20)),
    ]
    assert all(c.at.tzinfo == dt.UTC for c in changes)
    assert changes[3].at - changes[0].at == dt.timedelta(seconds=20)


async def test_assert_history_passes_on_states_and_on_times(
    autojump_clock: Clock, qmux_service_factory: ServiceFactory
) -> None:
    async with qmux_service_factory([qpu("q", interactive_ttl=10)]) as service:
        session = await _deactivated_then_closed(service)
        await assert_history(session, ["open", "active", "inactive", "closed"])
        await assert_history(session, [("open", 0), ("active", 3), ("inactive", 18), ("closed", 20)])
        await assert_history(session, ["open", ("active", 3), ...])
        await assert_history(session, ["open", "active", "inactive", "closed", ...])


@pytest.mark.parametrize(
    "expected",
    [
        ["open", "active", "closed"],  # a state missing
        ["open", "active", "inactive"],  # one too few
        ["open", "active", "inactive", "closed", "open"],  # one too many
        ["open", ("active", 2.5), "inactive", "closed"],  # the wrong time
        ["open", "inactive", ...],  # the wrong beginning
    ],
)
async def test_assert_history_fails_showing_the_actual_history_with_times(
    autojump_clock: Clock, expected: list[object]
) -> None:
    async with qmux.open_service([qpu("q", interactive_ttl=10)]) as service:
        session = await _deactivated_then_closed(service)
        with pytest.raises(AssertionError) as failed:
            await assert_history(session, expected)  # type: ignore[arg-type]
    message = str(failed.value)
    lines = message.splitlines()
    assert lines[0] == f"session {session.session_id} history differs"
    assert lines[1].startswith("expected: open, ")
    assert lines[3].split()[:3] == ["+0.000000", "s", "open"]
    assert lines[4].split()[:3] == ["+3.000000", "s", "active"]
    assert lines[5].split()[:3] == ["+18.000000", "s", "inactive"]
    assert lines[6].split()[:3] == ["+20.000000", "s", "closed"]
    assert lines[6].split()[3].endswith("Z")
    assert len(lines) == 7


async def test_a_time_is_matched_within_the_tolerance(autojump_clock: Clock) -> None:
    async with qmux.open_service([qpu("q", interactive_ttl=10)]) as service:
        session = await _deactivated_then_closed(service)
        await assert_history(session, ["open", ("active", 3.1), ...], tolerance=0.2)
        with pytest.raises(AssertionError, match=re.escape("expected: open, active at 3.1 s, ...")):
            await assert_history(session, ["open", ("active", 3.1), ...])


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ("open", r"expected='open': give a list of states"),
        (["open", 3], r"expected\[1\]=3: give a state"),
        ([("open", "0")], r"expected\[0\]=\('open', '0'\)"),
        ([("open", True)], r"expected\[0\]=\('open', True\)"),
    ],
)
async def test_a_malformed_expectation_is_refused(autojump_clock: Clock, expected: object, message: str) -> None:
    async with qmux.open_service([qpu("q")]) as service:
        session = qmux.Session(service=service, backend="q")
        with pytest.raises(qmux.InvalidInputError, match=message):
            await assert_history(session, expected)  # type: ignore[arg-type]
        with pytest.raises(qmux.InvalidInputError, match=r"tolerance=-1"):
            await assert_history(session, ["open"], tolerance=-1)
        await session.close()


def test_a_state_change_prints_as_one_aligned_line() -> None:
    change = StateChange("inactive", dt.datetime(2025, 1, 2, 3, 4, 5, 600000, tzinfo=dt.UTC), 12.5)
    assert str(change) == "    +12.500000 s  inactive  2025-01-02T03:04:05.600000Z"
