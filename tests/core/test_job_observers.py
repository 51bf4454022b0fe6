"""`Service.observe_jobs`: every job's start and end, told inline with its times (what metrics count).

The observer hears each job once when it starts and once when it ends, whichever way it came
(a session, job mode, a recovery) and whichever way it ended (SPEC J2 cancel, J3 failure, R1
retries), with the times the job's own ``metrics()`` reports (SPEC U1).
"""

from __future__ import annotations

import pytest
import structlog.testing
import trio
import trio.testing

import qmux
from qmux.journal import MemoryStore
from qmux.testing import job, qpu

from .test_policies import flaky

Clock = trio.testing.MockClock


def heard(changes: list[qmux.JobChange], job_id: str) -> list[tuple[str, float, float | None]]:
    return [(c.status.value, c.queue_seconds, c.run_seconds) for c in changes if c.job_id == job_id]


async def test_U1_each_start_and_end_is_told_once_with_the_times_metrics_report(autojump_clock: Clock) -> None:
    changes: list[qmux.JobChange] = []
    async with qmux.open_service([qpu("q"), qpu("sim", simulator=True)]) as service:
        service.observe_jobs(changes.append)
        session = qmux.Session(service=service, backend="q")
        first = await session.run("script", job(2))  # runs 0-2
        second = await session.run("script", job(3))  # waits 2 s, runs 2-5
        solo = await service.backend("sim").run("script", job(1))  # job mode: starts at once
        assert await second.result() is not None
        await session.close()
        await solo.result()
        metrics = await second.metrics()
    assert heard(changes, first.job_id) == [("RUNNING", 0.0, 0.0), ("DONE", 0.0, 2.0)]
    assert heard(changes, second.job_id) == [("RUNNING", 2.0, 0.0), ("DONE", 2.0, 3.0)]
    assert heard(changes, solo.job_id) == [("RUNNING", 0.0, 0.0), ("DONE", 0.0, 1.0)]
    assert (metrics["queue_seconds"], metrics["usage"]["seconds"]) == (2.0, 3.0), "the same times as metrics()"
    assert {c.backend for c in changes if c.job_id == solo.job_id} == {"sim"}


async def test_J2_J3_jobs_that_fail_or_are_cancelled_are_told_as_they_end(autojump_clock: Clock) -> None:
    changes: list[qmux.JobChange] = []
    async with qmux.open_service([qpu("q")]) as service:
        service.observe_jobs(changes.append)
        session = qmux.Session(service=service, backend="q")
        failing = await session.run("script", job(1, fail="boom"))
        waiting = await session.run("script", job(5))
        await trio.sleep(0.5)
        await waiting.cancel()  # never started
        with pytest.raises(qmux.JobFailedError):
            await failing.result()
        await session.close()
    assert heard(changes, failing.job_id) == [("RUNNING", 0.0, 0.0), ("ERROR", 0.0, 1.0)]
    assert heard(changes, waiting.job_id) == [("CANCELLED", 0.5, None)], "no start, no run time"


async def test_R1_a_retried_job_is_told_one_start_and_one_end(autojump_clock: Clock) -> None:
    changes: list[qmux.JobChange] = []
    async with qmux.open_service([flaky(retries=2, backoff=1.0)]) as service:
        service.observe_jobs(changes.append)
        retried = await service.backend("flaky").run("script", {"seconds": 1, "transient": 1, "value": "ok"})
        assert await retried.result() == "ok"
    assert heard(changes, retried.job_id) == [("RUNNING", 0.0, 0.0), ("DONE", 0.0, 3.0)], "1 s, 1 s back off, 1 s"


async def test_T1_retagging_is_journaled_but_not_told_as_a_change(autojump_clock: Clock) -> None:
    changes: list[qmux.JobChange] = []
    store = MemoryStore()
    async with qmux.open_service([qpu("q")], journal=store) as service:
        service.observe_jobs(changes.append)
        done = await service.backend("q").run("script", job(1))
        await done.result()
        await done.update_tags(["kept"])
        await trio.sleep(1)  # the journal's next batch
        assert store.jobs[done.job_id].tags == ("kept",)
    assert [c.status.value for c in changes] == ["RUNNING", "DONE"]


async def test_jobs_already_queued_or_running_are_told_what_comes_after(autojump_clock: Clock) -> None:
    changes: list[qmux.JobChange] = []
    async with qmux.open_service([qpu("q")]) as service:
        session = qmux.Session(service=service, backend="q")
        running = await session.run("script", job(2))
        queued = await session.run("script", job(2))
        await trio.sleep(1)
        service.observe_jobs(changes.append)  # late: one job running, one queued
        await queued.result()
        await session.close()
    assert heard(changes, running.job_id) == [("DONE", 0.0, 2.0)]
    assert heard(changes, queued.job_id) == [("RUNNING", 2.0, 0.0), ("DONE", 2.0, 2.0)]


async def test_J4_jobs_a_restart_recovered_are_told_as_they_run(autojump_clock: Clock) -> None:
    store = MemoryStore()
    async with qmux.open_service([qpu("q")], journal=store) as service:
        session = qmux.Session(service=service, backend="q")
        await session.run("script", job(10))
        first = await session.run("script", job(1))
        second = await session.run("script", job(1))
        await trio.sleep(1)
        left = MemoryStore()  # what a crash at this instant leaves behind
        left.sessions, left.jobs = dict(store.sessions), dict(store.jobs)
        await session.close()
    changes: list[qmux.JobChange] = []
    async with qmux.open_service([qpu("q")], journal=left) as service:
        service.observe_jobs(changes.append)  # the first may have started already: its end is told
        await (await service.job(second.job_id)).result()
        await (await service.session(session.session_id)).close()
    assert [c.status.value for c in changes if c.job_id == first.job_id][-1:] == ["DONE"]
    assert [c.status.value for c in changes if c.job_id == second.job_id] == ["RUNNING", "DONE"]


async def test_J4_an_observer_that_raises_leaves_the_job_and_its_waiter_alone(autojump_clock: Clock) -> None:
    changes: list[qmux.JobChange] = []

    def broken(change: qmux.JobChange) -> None:
        raise RuntimeError("observer bug")

    async with qmux.open_service([qpu("q")]) as service:
        service.observe_jobs(broken)
        service.observe_jobs(changes.append)
        with structlog.testing.capture_logs() as logs:
            done = await service.backend("q").run("script", job(1, value=7))
            assert await done.result() == 7
    assert [c.status.value for c in changes] == ["RUNNING", "DONE"], "the next observer is still told"
    failures = [entry for entry in logs if entry["event"] == "service.job_observer_failed"]
    assert [entry["job_id"] for entry in failures] == [done.job_id, done.job_id]
