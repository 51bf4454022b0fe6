"""The session contract, one or more tests per rule of SPEC.md (S1-S19, J1-J3).

Every test runs on pytest-trio's ``autojump_clock`` (``MockClock(autojump_threshold=0)``), against
scripted backends whose job durations the test sets, and through `service_factory`, so that the
same rules are checked in process and over every other front door.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

import qmux
from qmux.testing import ScriptedBackend, ServiceFactory, job, qpu

Clock = trio.testing.MockClock
PENDING = "Pending"
ACCEPTING = "In progress, accepting new jobs"
DRAINING = "In progress, not accepting new jobs"
CLOSED = "Closed"


def _at(iso: str | None) -> dt.datetime:
    assert iso is not None
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _seconds(later: str | None, earlier: str | None) -> float:
    return (_at(later) - _at(earlier)).total_seconds()


async def _occupy(service: Any, backend: str, seconds: float) -> qmux.Job:
    """Keep `backend` busy with a job-mode job for `seconds`."""
    handle = service.backend(backend)
    busy = await handle.run("script", job(seconds))
    await trio.lowlevel.checkpoint()
    return busy


# -- S1, S2: opening ---------------------------------------------------------------------------


async def test_S1_open_by_name_and_by_backend_object(autojump_clock: Clock, service_factory: ServiceFactory) -> None:
    async with service_factory([qpu("a")]) as service:
        by_name = qmux.Session(service=service, backend="a")
        by_object = qmux.Session(backend=service.backend("a"))
        assert by_name.backend_name == by_object.backend_name == "a"
        assert by_name.session_id != by_object.session_id
        await by_name.close()
        await by_object.close()


async def test_S1_unknown_backend_is_refused_with_known_names(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a"), qpu("b")]) as service:
        with pytest.raises(qmux.BackendNotFoundError, match=r"'nope'.*known backends: a, b"):
            qmux.Session(service=service, backend="nope")
        with pytest.raises(qmux.BackendNotFoundError):
            service.backend("nope")


async def test_S1_backend_not_operational_is_refused(autojump_clock: Clock, service_factory: ServiceFactory) -> None:
    async with service_factory([qpu("down", operational=False)]) as service:
        with pytest.raises(qmux.BackendUnavailableError, match="not operational"):
            qmux.Session(service=service, backend="down")


async def test_S1_session_needs_a_backend_and_a_service(autojump_clock: Clock, service_factory: ServiceFactory) -> None:
    async with service_factory([qpu("a")]) as service:
        with pytest.raises(qmux.InvalidInputError, match="needs a backend"):
            qmux.Session(service=service)
        with pytest.raises(qmux.InvalidInputError, match="needs service"):
            qmux.Session(backend="a")
        with pytest.raises(qmux.InvalidInputError, match="neither a backend name"):
            qmux.Session(service=service, backend=42)  # type: ignore[arg-type]


async def test_S2_context_manager_closes_on_exit(autojump_clock: Clock, service_factory: ServiceFactory) -> None:
    async with service_factory([qpu("a")]) as service:
        async with qmux.Session(service=service, backend="a") as session:
            assert await session.status() == PENDING
            done = await session.run("script", job(1))
            await trio.sleep(0.5)
        assert await session.status() == DRAINING
        assert await done.result() == done.job_id
        assert await session.status() == CLOSED


async def test_S2_plain_object_is_usable_at_once_and_closed_by_hand(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a")]) as service:
        session = qmux.Session(service=service, backend="a")
        first = await session.run("script", job(2, value="x"))
        assert await first.result() == "x"
        await session.close()
        assert await session.status() == CLOSED


# -- S3, S4, S5: start, max_time, ITTL ---------------------------------------------------------


async def test_S3_session_starts_when_its_first_job_runs_not_when_opened(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a")]) as service:
        busy = await _occupy(service, "a", 50)
        session = qmux.Session(service=service, backend="a", max_time=600)
        first = await session.run("script", job(5))
        await trio.sleep(10)
        details = await session.details()
        assert await session.status() == PENDING
        assert details["state"] == "open"
        assert details["started_at"] is None
        assert details["active_timeout"] == 600  # the max_time clock has not begun
        await busy.result()
        await trio.sleep(1)
        details = await session.details()
        assert details["state"] == "active"
        assert _seconds(details["started_at"], details["timestamps"][0]["timestamp"]) == pytest.approx(50)
        assert details["active_timeout"] == pytest.approx(599)
        await first.result()
        await session.close()


@pytest.mark.parametrize(
    ("max_time", "seconds"),
    [("25m", 1500), ("1h30m", 5400), ("90s", 90), ("2h", 7200), (300, 300), (12.5, 12.5), (" 1H ", 3600)],
)
async def test_S4_max_time_accepts_durations_and_seconds(
    autojump_clock: Clock, service_factory: ServiceFactory, max_time: str | float, seconds: float
) -> None:
    async with service_factory([qpu("a", max_ttl=8 * 3600)]) as service:
        session = qmux.Session(service=service, backend="a", max_time=max_time)
        assert (await session.details())["max_time"] == seconds
        await session.close()


@pytest.mark.parametrize("bad", ["", "-5m", "25x", 0, -1, "0s", "m", "5m5h", float("nan"), float("inf"), True, [5]])
async def test_S4_bad_max_time_is_refused_naming_the_value(
    autojump_clock: Clock, service_factory: ServiceFactory, bad: object
) -> None:
    async with service_factory([qpu("a")]) as service:
        with pytest.raises(qmux.InvalidInputError, match="max_time=") as raised:
            qmux.Session(service=service, backend="a", max_time=bad)  # type: ignore[arg-type]
        assert repr(bad) in str(raised.value)
        assert isinstance(raised.value, ValueError)


async def test_S4_max_time_above_max_ttl_is_refused_naming_the_limit(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a", max_ttl=3600)]) as service:
        with pytest.raises(qmux.InvalidInputError, match=r"'2h'.*above the max_ttl of backend 'a' \(3600s\)"):
            qmux.Session(service=service, backend="a", max_time="2h")
        at_limit = qmux.Session(service=service, backend="a", max_time="1h")
        await at_limit.close()


async def test_S4_max_time_defaults_to_the_backends_max_ttl(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a", max_ttl=1234)]) as service:
        session = qmux.Session(service=service, backend="a")
        assert (await session.details())["max_time"] == 1234
        await session.close()


async def test_S5_the_ittl_is_the_backends_and_cannot_be_set(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a", interactive_ttl=7)]) as service:
        with pytest.raises(TypeError):
            qmux.Session(service=service, backend="a", interactive_ttl=1)  # type: ignore[call-arg]
        session = qmux.Session(service=service, backend="a")
        assert (await session.details())["interactive_timeout"] == 7
        await session.close()


# -- S6: least_busy ----------------------------------------------------------------------------


async def test_S6_least_busy_picks_the_fewest_pending_jobs(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    backends = [qpu("busy"), qpu("idle"), qpu("sim", simulator=True), qpu("down", operational=False)]
    async with service_factory(backends) as service:
        for _ in range(3):
            await service.backend("busy").run("script", job(100))
        await trio.sleep(1)
        assert service.backend("busy").pending_jobs == 2  # one runs, two wait
        assert service.least_busy(operational=True, simulator=False).name == "idle"
        assert service.least_busy(simulator=True).name == "sim"
        assert service.least_busy(operational=False).name == "down"
        for _ in range(3):
            await service.backend("idle").run("script", job(100))
        await trio.sleep(1)
        await service.backend("idle").run("script", job(100))
        assert service.least_busy().name == "busy"


async def test_S6_least_busy_with_nothing_matching_is_a_clear_error(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("sim", simulator=True)]) as service:
        with pytest.raises(qmux.BackendUnavailableError, match=r"no backend matches.*simulator=False"):
            service.least_busy(operational=True, simulator=False)


# -- S7, S8, S9: priority, ITTL, deactivation --------------------------------------------------


async def test_S7_an_active_sessions_jobs_run_before_others_in_order(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    backend = qpu("a", interactive_ttl=10)
    async with service_factory([backend]) as service:
        session = qmux.Session(service=service, backend="a")
        first = await session.run("script", job(10))
        await trio.sleep(1)
        outsider = await service.backend("a").run("script", job(1))
        other = qmux.Session(service=service, backend="a")
        other_job = await other.run("script", job(1))
        mine = [await session.run("script", job(2)) for _ in range(3)]
        await other_job.result()
        order = [e.job_id for e in backend.executions]
        assert order == [first.job_id, *(j.job_id for j in mine), outsider.job_id, other_job.job_id]
        await session.close()
        await other.close()


async def test_S8_backend_waits_the_ittl_for_the_sessions_next_job(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    backend = qpu("a", interactive_ttl=10)
    async with service_factory([backend]) as service:
        session = qmux.Session(service=service, backend="a")
        await (await session.run("script", job(1))).result()
        outsider = await service.backend("a").run("script", job(1))
        await trio.sleep(9)  # within the ITTL: the backend is still reserved
        assert await outsider.status() == "QUEUED"
        assert await session.status() == ACCEPTING
        follow_up = await session.run("script", job(1))
        await follow_up.result()
        await outsider.result()
        assert [e.job_id for e in backend.executions][1:] == [follow_up.job_id, outsider.job_id]
        await session.close()


async def test_S9_ittl_expiry_hands_the_backend_on_and_the_next_job_waits_behind(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    backend = qpu("a", interactive_ttl=10)
    async with service_factory([backend]) as service:
        session = qmux.Session(service=service, backend="a")
        await (await session.run("script", job(1))).result()
        t_done = trio.current_time()
        other = qmux.Session(service=service, backend="a")
        other_job = await other.run("script", job(30))
        await trio.sleep(10.5)  # ITTL passed: deactivated, the other session took the backend
        assert await session.status() == PENDING
        assert (await session.details())["state"] == "inactive"
        assert backend.executions[-1].job_id == other_job.job_id
        assert backend.executions[-1].started == pytest.approx(t_done + 10)
        late = await session.run("script", job(1))
        assert await late.status() == "QUEUED"
        await late.result()
        assert backend.executions[-1].job_id == late.job_id
        # behind the other session's job (30 s) and its own ITTL (10 s, S8): it now holds the backend
        assert backend.executions[-1].started == pytest.approx(t_done + 10 + 30 + 10)
        assert await session.status() == ACCEPTING  # active again once its job started
        await session.close()
        await other.close()


async def test_S9_deactivated_sessions_job_waits_in_line_like_any_job(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    backend = qpu("a", interactive_ttl=5)
    async with service_factory([backend]) as service:
        session = qmux.Session(service=service, backend="a")
        await (await session.run("script", job(1))).result()
        await trio.sleep(6)
        queued_first = [await service.backend("a").run("script", job(3)) for _ in range(2)]
        mine = await session.run("script", job(1))
        queued_after = await service.backend("a").run("script", job(3))
        await queued_after.result()
        order = [e.job_id for e in backend.executions[1:]]
        assert order == [*(j.job_id for j in queued_first), mine.job_id, queued_after.job_id]
        assert await mine.status() == "DONE"
        await session.close()


# -- S10: max_time -----------------------------------------------------------------------------


async def test_S10_max_time_counts_from_the_first_execution_not_from_open(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a", interactive_ttl=1000)]) as service:
        t_open = trio.current_time()
        await _occupy(service, "a", 100)
        session = qmux.Session(service=service, backend="a", max_time=300)
        await session.run("script", job(1))
        await trio.sleep(t_open + 350 - trio.current_time())
        assert await session.status() == ACCEPTING  # 300 s after open, but only 250 s after start
        await trio.sleep(t_open + 401 - trio.current_time())
        assert await session.status() == CLOSED
        details = await session.details()
        assert _seconds(details["closed_at"], details["started_at"]) == pytest.approx(300)
        assert details["active_timeout"] == 0


async def test_S10_max_time_fails_queued_jobs_and_lets_the_running_one_finish(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a")]) as service:
        session = qmux.Session(service=service, backend="a", max_time=100)
        running = await session.run("script", job(150, value="kept"))
        queued = [await session.run("script", job(1)) for _ in range(2)]
        await trio.sleep(100.5)
        assert await session.status() == CLOSED
        for waiting in queued:
            assert await waiting.status() == "ERROR"
            with pytest.raises(qmux.JobFailedError, match="max_time") as failed:
                await waiting.result()
            assert failed.value.reason == "max_time"
        with pytest.raises(qmux.SessionClosedError, match="max_time") as refused:
            await session.run("script", job(1))
        assert refused.value.reason is qmux.ClosedReason.MAX_TIME
        assert await running.status() == "RUNNING"
        assert await running.result() == "kept"


async def test_S10_idle_time_counts_toward_max_time(autojump_clock: Clock, service_factory: ServiceFactory) -> None:
    async with service_factory([qpu("a", interactive_ttl=5)]) as service:
        session = qmux.Session(service=service, backend="a", max_time=60)
        await (await session.run("script", job(1))).result()
        await trio.sleep(58)  # deactivated after 5 s, but the clock keeps running
        assert await session.status() == PENDING
        assert (await session.details())["active_timeout"] == pytest.approx(1)
        await trio.sleep(2)
        assert await session.status() == CLOSED


# -- S11: mixed programs, simulators -------------------------------------------------------------


async def test_S11_one_session_carries_several_programs(autojump_clock: Clock, service_factory: ServiceFactory) -> None:
    backend = qpu("a")
    async with service_factory([backend]) as service, qmux.Session(service=service, backend="a") as session:
        jobs = [await session.run(program, job(1, value=program)) for program in ("sampler", "estimator", "mine")]
        assert [await j.result() for j in jobs] == ["sampler", "estimator", "mine"]
        assert {j.program_id for j in jobs} == {"sampler", "estimator", "mine"}


async def test_S11_sessions_work_on_simulators_with_several_slots(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    backend = qpu("sim", simulator=True, concurrency=3)
    async with service_factory([backend]) as service, qmux.Session(service=service, backend="sim") as session:
        jobs = [await session.run("script", job(10)) for _ in range(3)]
        await trio.sleep(1)
        assert [await j.status() for j in jobs] == ["RUNNING"] * 3  # its own jobs use every slot
        for j in jobs:
            await j.result()


# -- S12, S13, S14: close, cancel, root job -----------------------------------------------------


async def test_S12_close_drains_queued_jobs_then_closes_at_once(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a", interactive_ttl=100)]) as service:
        session = qmux.Session(service=service, backend="a")
        jobs = [await session.run("script", job(5, value=i)) for i in range(3)]
        await trio.sleep(1)
        await session.close()
        assert await session.status() == DRAINING
        with pytest.raises(qmux.SessionClosedError, match="was closed") as refused:
            await session.run("script", job(1))
        assert refused.value.reason is qmux.ClosedReason.CLOSED
        assert [await j.result() for j in jobs] == [0, 1, 2]
        assert await session.status() == CLOSED  # at once, not after the 100 s ITTL
        details = await session.details()
        assert details["closed_at"] == details["last_job_completed"]


async def test_S12_closing_with_nothing_queued_closes_at_once(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a", interactive_ttl=100)]) as service:
        idle = qmux.Session(service=service, backend="a")
        await idle.close()
        assert await idle.status() == CLOSED
        used = qmux.Session(service=service, backend="a")
        await (await used.run("script", job(1))).result()
        assert await used.status() == ACCEPTING  # holding the backend through its ITTL
        await used.close()
        assert await used.status() == CLOSED
        after = await service.backend("a").run("script", job(1, value="next"))
        assert await after.result() == "next"
        assert trio.current_time() == pytest.approx(2)  # the backend was freed at the close


async def test_S12_results_stay_retrievable_after_close(autojump_clock: Clock, service_factory: ServiceFactory) -> None:
    async with service_factory([qpu("a")]) as service:
        async with qmux.Session(service=service, backend="a") as session:
            first = await session.run("script", job(1, value=1))
            second = await session.run("script", job(1, value=2))
        assert await first.result() == 1
        assert await second.result() == 2
        again = await service.job(second.job_id)
        assert await again.result() == 2


async def test_S13_cancel_fails_queued_jobs_and_lets_the_running_one_finish(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a")]) as service:
        session = qmux.Session(service=service, backend="a")
        running = await session.run("script", job(10, value="done"))
        queued = [await session.run("script", job(1)) for _ in range(2)]
        await trio.sleep(1)
        await session.cancel()
        assert await session.status() == CLOSED  # at once
        for waiting in queued:
            assert await waiting.status() == "CANCELLED"
            with pytest.raises(qmux.JobCancelledError, match="cancelled"):
                await waiting.result()
        with pytest.raises(qmux.SessionClosedError, match="was cancelled") as refused:
            await session.run("script", job(1))
        assert refused.value.reason is qmux.ClosedReason.CANCELLED
        assert await running.result() == "done"
        assert await running.status() == "DONE"


async def test_S14_cancelling_the_queued_root_job_fails_the_session(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a")]) as service:
        await _occupy(service, "a", 50)
        session = qmux.Session(service=service, backend="a")
        root = await session.run("script", job(1))
        assert root.job_id == session.session_id
        rest = [await session.run("script", job(1)) for _ in range(2)]
        await root.cancel()
        assert await root.status() == "CANCELLED"
        assert await session.status() == CLOSED
        for other in rest:
            assert await other.status() == "ERROR"
            with pytest.raises(qmux.JobFailedError, match=f"root job {root.job_id}"):
                await other.result()
        with pytest.raises(qmux.SessionClosedError, match=f"root job {root.job_id}") as refused:
            await session.run("script", job(1))
        assert refused.value.root_job_id == root.job_id
        assert refused.value.reason is qmux.ClosedReason.ROOT_JOB_CANCELLED


async def test_S14_cancelling_the_running_root_job_stops_it_and_fails_the_session(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    backend = qpu("a")
    async with service_factory([backend]) as service:
        session = qmux.Session(service=service, backend="a")
        root = await session.run("script", job(100))
        other = await session.run("script", job(1))
        await trio.sleep(5)
        await root.cancel()
        with pytest.raises(qmux.JobCancelledError):
            await root.result()
        assert backend.executions[0].outcome == "cancelled"
        assert backend.executions[0].ended == pytest.approx(5)
        with pytest.raises(qmux.JobFailedError, match="root job"):
            await other.result()
        assert await session.status() == CLOSED


async def test_S15_submitting_to_a_closed_session_queues_nothing(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    backend = qpu("a")
    async with service_factory([backend]) as service:
        session = qmux.Session(service=service, backend="a")
        await session.close()
        with pytest.raises(qmux.SessionClosedError):
            await session.run("script", job(1))
        assert service.backend("a").pending_jobs == 0
        await trio.sleep(10)
        assert backend.executions == []


async def test_S16_closing_and_cancelling_twice_is_harmless(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a")]) as service:
        session = qmux.Session(service=service, backend="a")
        finished = await session.run("script", job(1, value="v"))
        assert await finished.result() == "v"
        await finished.cancel()  # a finished job: nothing happens
        assert await finished.status() == "DONE"
        assert await finished.result() == "v"
        await session.close()
        await session.close()
        await session.cancel()
        await session.cancel()
        assert await session.status() == CLOSED


async def test_S17_status_walks_through_exactly_the_four_strings(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    seen: list[str] = []
    async with service_factory([qpu("a", interactive_ttl=5)]) as service:
        session = qmux.Session(service=service, backend="a")
        seen.append(await session.status())
        first = await session.run("script", job(10))
        await trio.sleep(1)
        seen.append(await session.status())
        await session.run("script", job(10))
        await session.close()
        seen.append(await session.status())
        await first.result()
        await trio.sleep(20)
        seen.append(await session.status())
    assert seen == [PENDING, ACCEPTING, DRAINING, CLOSED]


async def test_S18_details_has_the_keys_and_values_of_ibm_runtime(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a", interactive_ttl=5, max_ttl=7200)]) as service:
        session = qmux.Session(service=service, backend="a", max_time="1h")
        opened = await session.details()
        assert opened["state"] == "open"
        assert opened["mode"] == "dedicated"
        assert opened["usage_time"] == 0
        await trio.sleep(10)
        await (await session.run("script", job(4))).result()
        await trio.sleep(20)  # deactivated 5 s after the job
        await (await session.run("script", job(6))).result()
        await session.close()
        details = await session.details()
    expected_keys = {
        "id", "backend_name", "interactive_timeout", "max_time", "active_timeout", "state", "accepting_jobs",
        "last_job_started", "last_job_completed", "started_at", "closed_at", "activated_at", "mode",
        "usage_time", "timestamps",
    }  # fmt: skip
    assert expected_keys <= set(details)
    assert details["id"] == session.session_id
    assert details["backend_name"] == "a"
    assert details["interactive_timeout"] == 5
    assert details["max_time"] == 3600
    assert details["state"] == "closed"
    assert details["accepting_jobs"] is False
    assert _seconds(details["started_at"], opened["timestamps"][0]["timestamp"]) == pytest.approx(10)
    assert _seconds(details["last_job_started"], details["started_at"]) == pytest.approx(24)
    assert _seconds(details["closed_at"], details["started_at"]) == pytest.approx(30)
    assert _seconds(details["activated_at"], details["started_at"]) == pytest.approx(24)
    assert details["usage_time"] == pytest.approx(30)
    assert details["active_timeout"] == pytest.approx(3600 - 30)
    assert [t["status"] for t in details["timestamps"]] == ["open", "active", "inactive", "active", "closed"]
    for stamp in details["timestamps"]:
        assert stamp["timestamp"].endswith("Z")


async def test_S19_a_session_with_no_job_closes_itself_after_the_idle_delay(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a")]) as service:
        session = qmux.Session(service=service, backend="a")
        await trio.sleep(1799)
        assert await session.status() == PENDING
        await trio.sleep(2)
        assert await session.status() == CLOSED
        with pytest.raises(qmux.SessionClosedError, match="no job within its idle-at-open delay") as refused:
            await session.run("script", job(1))
        assert refused.value.reason is qmux.ClosedReason.IDLE_AT_OPEN


async def test_S19_the_idle_delay_is_a_service_setting_and_a_job_stops_it(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    settings = qmux.ServiceSettings(idle_open_timeout=60)
    async with service_factory([qpu("a", interactive_ttl=5)], settings) as service:
        quiet = qmux.Session(service=service, backend="a")
        used = qmux.Session(service=service, backend="a")
        await (await used.run("script", job(1))).result()
        await trio.sleep(120)
        assert await quiet.status() == CLOSED
        assert await used.status() == PENDING  # deactivated, still open
        await used.close()


# -- J1, J2, J3: jobs --------------------------------------------------------------------------


async def test_J1_job_ids_status_and_session(autojump_clock: Clock, service_factory: ServiceFactory) -> None:
    async with service_factory([qpu("a")]) as service:
        in_job_mode = await service.backend("a").run("script", job(2, value="jm"))
        assert in_job_mode.session_id is None
        assert in_job_mode.backend_name == "a"
        assert await in_job_mode.status() in ("QUEUED", "RUNNING")
        assert await in_job_mode.result() == "jm"
        assert await in_job_mode.status() == "DONE"
        async with qmux.Session(service=service, backend="a") as session:
            root = await session.run("script", job(1))
            second = await session.run("script", job(1))
        assert (root.job_id, root.session_id) == (session.session_id, session.session_id)
        assert second.job_id != root.job_id
        assert second.session_id == session.session_id
        await second.result()


async def test_J2_cancelling_a_queued_job_removes_it(autojump_clock: Clock, service_factory: ServiceFactory) -> None:
    backend = qpu("a")
    async with service_factory([backend]) as service:
        async with qmux.Session(service=service, backend="a") as session:
            first = await session.run("script", job(5))
            dropped = await session.run("script", job(5))
            kept = await session.run("script", job(5))
            await dropped.cancel()
            assert await dropped.status() == "CANCELLED"
            await kept.result()
        assert [e.job_id for e in backend.executions] == [first.job_id, kept.job_id]
        await service.backend("a").run("script", job(10))
        queued_in_job_mode = await service.backend("a").run("script", job(1))
        await trio.sleep(1)
        assert await queued_in_job_mode.status() == "QUEUED"
        await queued_in_job_mode.cancel()
        with pytest.raises(qmux.JobCancelledError, match="was cancelled"):
            await queued_in_job_mode.result()
        assert len(backend.executions) == 3


async def test_J2_cancelling_a_running_job_asks_the_backend_to_stop(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    backend = qpu("a")
    async with service_factory([backend]) as service:
        async with qmux.Session(service=service, backend="a") as session:
            await session.run("script", job(1))
            long = await session.run("script", job(1000))
            after = await session.run("script", job(1, value="after"))
            await trio.sleep(3)
            await long.cancel()
            assert await after.result() == "after"
        assert await long.status() == "CANCELLED"
        assert backend.executions[1].outcome == "cancelled"
        assert backend.executions[1].ended == pytest.approx(3)
        in_job_mode = await service.backend("a").run("script", job(1000))
        await in_job_mode.cancel()  # before its execution task even ran
        with pytest.raises(qmux.JobCancelledError, match="while running"):
            await in_job_mode.result()


async def test_J3_a_backend_error_fails_that_job_only(autojump_clock: Clock, service_factory: ServiceFactory) -> None:
    async with service_factory([qpu("a")]) as service, qmux.Session(service=service, backend="a") as session:
        before = await session.run("script", job(1, value=1))
        broken = await session.run("script", job(1, fail="calibration lost"))
        after = await session.run("script", job(1, value=3))
        with pytest.raises(qmux.JobFailedError, match="calibration lost") as failed:
            await broken.result()
        assert failed.value.reason == "backend_error"
        assert failed.value.job_id == broken.job_id
        assert await broken.status() == "ERROR"
        assert (await before.result(), await after.result()) == (1, 3)
        assert await session.status() == ACCEPTING


async def test_J3_the_backends_exception_is_kept_as_the_cause(autojump_clock: Clock) -> None:
    async with qmux.open_service([qpu("a")]) as service:
        broken = await service.backend("a").run("script", job(1, fail="boom"))
        with pytest.raises(qmux.JobFailedError) as failed:
            await broken.result()
        assert isinstance(failed.value.__cause__, RuntimeError)


async def test_job_lookup_by_unknown_id_is_not_found(autojump_clock: Clock, service_factory: ServiceFactory) -> None:
    async with service_factory([qpu("a")]) as service:
        with pytest.raises(qmux.JobNotFoundError, match="no job"):
            await service.job("0" * 20)


def test_scripted_backend_is_a_backend() -> None:
    assert isinstance(ScriptedBackend("x"), qmux.Backend)
    assert math.isfinite(qmux.BackendConfig().max_ttl)


async def test_S7_a_closed_sessions_running_job_is_not_joined_by_other_work(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    backend = qpu("sim", simulator=True, concurrency=2)
    async with service_factory([backend]) as service:
        session = qmux.Session(service=service, backend="sim")
        running = await session.run("script", job(20))
        await trio.sleep(1)
        await session.cancel()
        outsider = await service.backend("sim").run("script", job(1))
        await outsider.result()
        assert backend.executions[-1].started == pytest.approx(20)  # after the session's job, not beside it
        await running.result()


async def test_S10_a_job_hanging_past_max_time_is_bounded_by_the_backends_job_timeout(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    backend = qpu("a", job_timeout=500)
    async with service_factory([backend]) as service:
        session = qmux.Session(service=service, backend="a", max_time=100)
        hung = await session.run("script", job(math.inf))
        queued = await session.run("script", job(1))
        await trio.sleep(101)
        assert await session.status() == CLOSED  # max_time closed the session at once
        with pytest.raises(qmux.JobFailedError, match="max_time"):
            await queued.result()
        assert await hung.status() == "RUNNING"  # S10: a running job is left to finish...
        with pytest.raises(qmux.JobFailedError, match="job_timeout of 500s") as failed:
            await hung.result()  # ...within the backend's own bound
        assert failed.value.reason == "job_timeout"
        assert trio.current_time() == pytest.approx(500)
        after = await service.backend("a").run("script", job(1, value="free again"))
        assert await after.result() == "free again"
