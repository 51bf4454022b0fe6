"""Handing a backend over between services: what a node of a cluster does (SPEC J4 across processes).

One service stops with `hand_over()` and leaves the journal as it is; another takes the backend
over with `adopt()` from the same journal's rows and recovers them as a restart would. The two
share a `MemoryStore` here, standing for the database the nodes of a cluster share.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

import qmux
from qmux.journal import MemoryStore
from qmux.testing import job, qpu

Clock = trio.testing.MockClock


def _rows_of(store: MemoryStore, backend: str) -> tuple[list[qmux.SessionSnapshot], list[qmux.JobSnapshot]]:
    sessions, jobs = store.load(retain_finished=100)
    return [s for s in sessions if s.backend == backend], [j for j in jobs if j.backend == backend]


async def test_J4_a_graceful_hand_over_lets_running_jobs_end_and_leaves_the_rest_for_the_next_owner(
    autojump_clock: Clock,
) -> None:
    store = MemoryStore()
    settings = qmux.ServiceSettings(shutdown_grace=50)
    async with qmux.open_service([qpu("a")], journal=store, settings=settings) as first:
        session = qmux.Session(service=first, backend="a", max_time=3000)
        running = await session.run("script", job(10, value="ran here"))
        queued = [await session.run("script", job(5, value=i)) for i in range(3)]
        job_mode = await first.backend("a").run("script", job(5, value="jm"))
        await trio.sleep(1)  # `running` runs; the rest wait behind the session
        first.hand_over()
        with pytest.raises(qmux.ServiceClosedError):
            await first.backend("a").run("script", job(1))
    # the running job ended within the grace and was recorded; nothing else moved
    rows = {row.job_id: row.status for row in store.jobs.values()}
    assert rows[running.job_id] == "DONE"
    assert [rows[q.job_id] for q in queued] == ["QUEUED"] * 3
    assert rows[job_mode.job_id] == "QUEUED"
    assert store.sessions[session.session_id].state != "closed"

    async with qmux.open_service([qpu("b")], journal=MemoryStore()) as second:
        second.adopt(qpu("a"), *_rows_of(store, "a"))
        assert await (await second.job(running.job_id)).result() == "ran here"
        assert [await (await second.job(q.job_id)).result() for q in queued] == [0, 1, 2]
        assert await (await second.job(job_mode.job_id)).result() == "jm"
        again = await second.session(session.session_id)
        assert (await again.details())["state"] != "closed"
        assert sorted(handle.name for handle in second.backends()) == ["a", "b"]


async def test_J4_a_job_still_running_when_the_grace_ends_is_interrupted_for_the_next_owner(
    autojump_clock: Clock,
) -> None:
    store = MemoryStore()
    async with qmux.open_service([qpu("a")], journal=store, settings=qmux.ServiceSettings(shutdown_grace=5)) as first:
        long = await first.backend("a").run("script", job(100))
        await trio.sleep(1)
        first.hand_over()
    assert store.jobs[long.job_id].status == "RUNNING"  # left as it was: the next owner decides

    async with qmux.open_service([], journal=MemoryStore()) as second:
        second.adopt(qpu("a"), *_rows_of(store, "a"))
        with pytest.raises(qmux.JobFailedError) as failed:
            await (await second.job(long.job_id)).result()
        assert failed.value.reason == "interrupted_by_restart"


async def test_J4_hand_over_now_writes_nothing_more(autojump_clock: Clock) -> None:
    store = MemoryStore()
    async with qmux.open_service([qpu("a")], journal=store) as first:
        session = qmux.Session(service=first, backend="a", max_time=3000)
        running = await session.run("script", job(10))
        await trio.sleep(1)
        before = {row.job_id: row.status for row in store.jobs.values()}
        first.hand_over(now=True)  # this node lost its lease: another may own the rows already
        await trio.sleep(20)  # the job ends in memory, unrecorded
        with pytest.raises(qmux.StorageError, match="handed its work over"):
            await session.run("script", job(1))  # not acknowledged: it could not be recorded
    assert {row.job_id: row.status for row in store.jobs.values()} == before
    assert before[running.job_id] == "RUNNING"
    assert store.sessions[session.session_id].state != "closed"


async def test_J4_adopting_a_backend_does_not_disturb_the_others(autojump_clock: Clock) -> None:
    store = MemoryStore()
    async with qmux.open_service([qpu("a")], journal=store) as first:
        interrupted = await first.backend("a").run("script", job(50))
        queued = await first.backend("a").run("script", job(5, value="moved"))
        await trio.sleep(1)
        first.hand_over(now=True)
    async with qmux.open_service([qpu("b")], journal=MemoryStore()) as second:
        busy = await second.backend("b").run("script", job(30, value="undisturbed"))
        await trio.sleep(10)
        second.adopt(qpu("a"), *_rows_of(store, "a"))
        assert await (await second.job(queued.job_id)).result() == "moved"
        with pytest.raises(qmux.JobFailedError, match="interrupted"):
            await (await second.job(interrupted.job_id)).result()
        assert await busy.result() == "undisturbed"
        assert busy.metrics is not None
        with pytest.raises(qmux.InvalidInputError, match="already served"):
            second.adopt(qpu("a"), [], [])
        with pytest.raises(qmux.InvalidInputError, match="another backend's"):
            second.adopt(qpu("c"), *_rows_of(store, "a"))


async def test_a_backend_another_node_serves_is_listed_and_refused_until_adopted(autojump_clock: Clock) -> None:
    async with qmux.open_service([qpu("b")]) as service:
        service.know(qpu("a"))
        assert sorted(handle.name for handle in service.backends()) == ["a", "b"]
        assert not service.serves("a") and service.serves("b")
        with pytest.raises(qmux.BackendUnavailableError, match="another node of its cluster serves it"):
            await service.backend("a").run("script", job(1))
        with pytest.raises(qmux.BackendUnavailableError, match="another node"):
            qmux.Session(service=service, backend="a")
        with pytest.raises(qmux.BackendUnavailableError, match="another node"):
            await service.queue_info("a")
        with pytest.raises(qmux.BackendNotFoundError, match="known backends: a, b"):
            await service.backend("c").run("script", job(1))
        service.adopt(qpu("a"), [], [])
        assert service.serves("a")
        assert await (await service.backend("a").run("script", job(1, value="served"))).result() == "served"
