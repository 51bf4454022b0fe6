"""The journal: accepted work is durable before it is acknowledged, and survives a restart.

Recovery tests run on the virtual clock against each store (memory, a SQLite file, a real
PostgreSQL database): a `CrashingStore` stops taking writes at the instant of the "crash", and
the restarted service opens a new store on the same place, holding exactly what a crash there
would leave behind. `threads_hold_the_clock` keeps virtual time exact while the SQLite and
PostgreSQL stores write in worker threads.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import qmux
import qmux._core._time
from qmux.journal import JobSnapshot, MemoryStore, SessionSnapshot, SQLiteStore
from qmux.testing import job, qpu

from .places import CrashingStore, JournalPlace

Clock = trio.testing.MockClock
BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def virtual_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wall time follows the virtual clock, so that time spent down can be simulated."""
    monkeypatch.setattr(qmux._core._time, "wall_now", lambda: BASE + dt.timedelta(seconds=trio.current_time()))


def _crash_copy(store: MemoryStore) -> MemoryStore:
    """What a crash at this instant leaves behind: exactly what the store holds now."""
    left = MemoryStore()
    left.sessions, left.jobs = dict(store.sessions), dict(store.jobs)
    return left


@pytest.fixture
async def crashing(journal: JournalPlace, threads_hold_the_clock: None) -> CrashingStore:
    """The first process's store on `journal`, which the test crashes at an instant of its choosing.

    Async, so that pytest-trio runs `threads_hold_the_clock` (it sets up the trio fixtures that
    a test's arguments reach, through trio fixtures only).
    """
    return CrashingStore(journal.open())


async def test_recovery_keeps_results_fails_interrupted_jobs_and_runs_queued_ones(
    autojump_clock: Clock, virtual_wall_clock: None, journal: JournalPlace, crashing: CrashingStore
) -> None:
    async with qmux.open_service([qpu("a")], journal=crashing) as service:
        session = qmux.Session(service=service, backend="a", max_time=1000)
        finished = await session.run("script", job(10, value="kept"))
        await finished.result()
        running = await session.run("script", job(100))
        queued = [await session.run("script", job(5, value=i)) for i in range(2)]
        job_mode = await service.backend("a").run("script", job(5, value="jm"))
        await trio.sleep(20)  # t=30: `running` runs, the rest wait
        crashing.crash()
        await session.cancel()
    await trio.sleep(100)  # down for 100 s

    async with qmux.open_service([qpu("a")], journal=journal.open()) as service:
        assert await (await service.job(finished.job_id)).result() == "kept"
        interrupted = await service.job(running.job_id)
        with pytest.raises(qmux.JobFailedError, match="interrupted by a restart") as failed:
            await interrupted.result()
        assert failed.value.reason == "interrupted_by_restart"
        assert [await (await service.job(q.job_id)).result() for q in queued] == [0, 1]
        assert await (await service.job(job_mode.job_id)).result() == "jm"
        again = await service.session(session.session_id)
        details = await again.details()
        # it started at t=0 and its clock ran on while the service was down (100 s of it)
        assert trio.current_time() > 140
        assert details["active_timeout"] == pytest.approx(1000 - trio.current_time(), abs=0.01)
        assert [t["status"] for t in details["timestamps"]][:2] == ["open", "active"]
        later = await again.run("script", job(1, value="after restart"))
        assert later.job_id not in {session.session_id, running.job_id}
        assert await later.result() == "after restart"
        await again.close()


async def test_recovery_counts_time_spent_down_against_max_time(
    autojump_clock: Clock, virtual_wall_clock: None, journal: JournalPlace, crashing: CrashingStore
) -> None:
    async with qmux.open_service([qpu("a")], journal=crashing) as service:
        session = qmux.Session(service=service, backend="a", max_time=60)
        await session.run("script", job(10))
        waiting = await session.run("script", job(10))
        await trio.sleep(5)
        crashing.crash()
        await session.cancel()
    await trio.sleep(120)  # longer than the max_time left

    async with qmux.open_service([qpu("a")], journal=journal.open()) as service:
        again = await service.session(session.session_id)
        assert await again.status() == "Closed"
        with pytest.raises(qmux.JobFailedError, match="max_time"):
            await (await service.job(waiting.job_id)).result()
        with pytest.raises(qmux.SessionClosedError, match="max_time"):
            await again.run("script", job(1))


async def test_recovery_reruns_interrupted_jobs_of_an_idempotent_backend(
    autojump_clock: Clock, virtual_wall_clock: None, journal: JournalPlace, crashing: CrashingStore
) -> None:
    async with qmux.open_service([qpu("a", idempotent=True)], journal=crashing) as service:
        session = qmux.Session(service=service, backend="a")
        running = await session.run("script", job(50, value="ran twice"))
        await trio.sleep(10)
        crashing.crash()
        await session.cancel()
    async with qmux.open_service([qpu("a", idempotent=True)], journal=journal.open()) as service:
        assert await (await service.job(running.job_id)).result() == "ran twice"


async def test_recovery_fails_the_jobs_of_a_backend_no_longer_served(
    autojump_clock: Clock, virtual_wall_clock: None, journal: JournalPlace, crashing: CrashingStore
) -> None:
    async with qmux.open_service([qpu("a"), qpu("gone")], journal=crashing) as service:
        session = qmux.Session(service=service, backend="gone")
        first = await session.run("script", job(50))
        second = await session.run("script", job(50))
        orphan = await service.backend("gone").run("script", job(5))
        await trio.sleep(1)
        crashing.crash()
        await session.cancel()
    async with qmux.open_service([qpu("a")], journal=journal.open()) as service:
        for lost in (first, second, orphan):
            assert await (await service.job(lost.job_id)).status() == "ERROR"
        with pytest.raises(qmux.JobFailedError, match="no longer served"):
            await (await service.job(second.job_id)).result()


class _FailingStore:
    """A store whose disk is full from the start."""

    blocking = False

    def write(self, sessions: Any, jobs: Any) -> None:
        raise OSError(28, "No space left on device")

    def load(self, *, retain_finished: int) -> tuple[list[SessionSnapshot], list[JobSnapshot]]:
        return [], []

    def close(self) -> None:
        pass


async def test_nothing_is_acknowledged_that_was_not_written(autojump_clock: Clock) -> None:
    backend = qpu("a")
    async with qmux.open_service([backend], journal=_FailingStore()) as service:
        session = qmux.Session(service=service, backend="a")
        with pytest.raises(qmux.StorageError, match="No space left on device"):
            await session.run("script", job(1))
        with pytest.raises(qmux.StorageError, match="No space left on device"):
            await service.backend("a").run("script", job(1))
        await trio.sleep(10)
        # the refused job was stopped at once: it never completed, and nothing waits in line
        assert [e.outcome for e in backend.executions] in ([], ["cancelled"])
        assert service.backend("a").pending_jobs == 0


async def test_a_full_disk_refuses_the_job_and_the_service_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    backend = qpu("a")
    with trio.fail_after(30):
        async with qmux.open_service([backend], journal=path) as service:
            session = qmux.Session(service=service, backend="a")
            small = await session.run("script", job(0.01, value="fits"))
            assert await small.result() == "fits"
            store = service._journal.store if service._journal else None
            assert isinstance(store, SQLiteStore)
            (pages,) = store._db.execute("PRAGMA page_count").fetchone()
            store._db.execute(f"PRAGMA max_page_count = {pages + 2}")  # the disk is now full
            with pytest.raises(qmux.StorageError, match="full"):  # a long job: cancelled long before it ends
                await session.run("script", job(10, value="x" * 100_000))
            await session.close()
    assert [e.outcome for e in backend.executions][1:] in ([], ["cancelled"])
    with sqlite3.connect(path) as db:
        (count,) = db.execute("SELECT count(*) FROM jobs").fetchone()
    assert count == 1


async def test_a_database_refusing_writes_refuses_the_job_and_the_service_goes_on(postgres_url: str) -> None:
    backend = qpu("a")
    server, database = postgres_url.rsplit("/", 1)
    admin = JournalPlace("postgres", f"{server}/postgres")  # the read-only database cannot be altered from inside
    cut_off = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'qmux'"
    with trio.fail_after(30):
        async with qmux.open_service([backend], journal=postgres_url) as service:
            session = qmux.Session(service=service, backend="a")
            assert await (await session.run("script", job(0.01, value="before"))).result() == "before"
            # batches commit in order: once this later job is acknowledged, "before" is journaled done
            await (await session.run("script", job(0.01, value="marker"))).result()
            # the database turns read-only and drops qmux's connection: the store reconnects once,
            # into a read-only session, and the job is refused rather than acknowledged
            admin.sql(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
            admin.sql(cut_off)
            with pytest.raises(qmux.StorageError, match=r"cannot write the journal postgresql://.*read-only"):
                await session.run("script", job(10, value="refused"))  # real seconds: cancelled long before
            admin.sql(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
            admin.sql(cut_off)
            assert await (await session.run("script", job(0.01, value="after"))).result() == "after"
            await session.close()
    assert [e.outcome for e in backend.executions] in (["done"] * 3, ["done", "done", "cancelled", "done"])
    store = JournalPlace("postgres", postgres_url).open()
    _, jobs = store.load(retain_finished=10)
    store.close()
    # the refused job's later rows may or may not have landed: it was never acknowledged
    statuses = {j.inputs["value"]: j.status for j in jobs}
    assert (statuses["before"], statuses["after"]) == ("DONE", "DONE")
    assert statuses.get("refused") != "DONE"


async def test_J4_each_job_is_journaled_in_the_terminal_state_its_waiter_saw(
    autojump_clock: Clock, threads_hold_the_clock: None, journal: JournalPlace
) -> None:
    settings = qmux.ServiceSettings(shutdown_grace=15)
    seen: dict[str, str] = {}

    async def wait(j: qmux.Job) -> None:
        with contextlib.suppress(qmux.JobError):
            await j.result()
        seen[j.job_id] = await j.status()

    backends = [qpu("a"), qpu("b")]
    async with (
        trio.open_nursery() as waiters,
        qmux.open_service(backends, settings=settings, journal=journal.open()) as service,
    ):
        session = qmux.Session(service=service, backend="a")
        for seconds in (10, 10, 10):
            waiters.start_soon(wait, await session.run("script", job(seconds)))
        for _ in range(2):
            waiters.start_soon(wait, await service.backend("b").run("script", job(10)))
    assert sorted(seen.values()) == ["DONE", "DONE", "ERROR", "ERROR", "ERROR"]
    store = journal.open()
    _, jobs = store.load(retain_finished=100)
    store.close()
    assert {j.job_id: j.status for j in jobs} == seen


async def test_owners_are_kept_with_sessions_and_jobs_across_a_restart(
    autojump_clock: Clock, virtual_wall_clock: None, journal: JournalPlace, crashing: CrashingStore
) -> None:
    async with qmux.open_service([qpu("a")], journal=crashing) as service:
        port = service.open_session_port("a", owner="alice")
        in_session = await port.submit("script", job(1))
        in_job_mode = await service.submit_job("a", "script", job(1), owner="bob")
        await in_job_mode.get_result()
        assert (service.session_owner(port.session_id), service.job_owner(in_session.job_id)) == ("alice", "alice")
        assert service.job_owner(in_job_mode.job_id) == "bob"
        assert service.session_owner("0" * 20) is None
        crashing.crash()
        await port.close()
    async with qmux.open_service([qpu("a")], journal=journal.open()) as service:
        assert service.session_owner(port.session_id) == "alice"
        assert service.job_owner(in_session.job_id) == "alice"
        assert service.job_owner(in_job_mode.job_id) == "bob"


async def test_T1_a_finished_job_retagged_after_a_restart_keeps_its_new_tags_across_the_next(
    autojump_clock: Clock, virtual_wall_clock: None, journal: JournalPlace
) -> None:
    async with qmux.open_service([qpu("a")], journal=journal.open()) as service:
        finished = await service.backend("a").run("script", job(1), tags=["first"])
        await finished.result()
    async with qmux.open_service([qpu("a")], journal=journal.open()) as service:
        await (await service.job(finished.job_id)).update_tags(["second"])  # recovered finished: still journaled
        await trio.sleep(1)
    async with qmux.open_service([qpu("a")], journal=journal.open()) as service:
        assert await (await service.job(finished.job_id)).tags() == ["second"]


async def test_a_tenants_sessions_and_jobs_stay_its_own_after_a_restart(
    autojump_clock: Clock, virtual_wall_clock: None
) -> None:
    from qmux.server import create_app

    from ..support.remote import OTHER_TOKEN, TENANTS, TOKEN, asgi_client

    store = MemoryStore()
    async with qmux.open_service([qpu("a")], journal=store) as service:
        async with asgi_client(create_app(service, TENANTS)) as http:
            session_id = (await http.post("/sessions", json={"backend": "a"})).json()["id"]
            job_id = (await http.post("/jobs", json={"program_id": "script", "session_id": session_id})).json()["id"]
            await trio.sleep(5)
        left = _crash_copy(store)
    async with qmux.open_service([qpu("a")], journal=left) as service:
        app = create_app(service, TENANTS)
        async with asgi_client(app, TOKEN) as owner, asgi_client(app, OTHER_TOKEN) as stranger:
            assert (await owner.get(f"/sessions/{session_id}")).status_code == 200
            assert (await owner.get(f"/jobs/{job_id}")).status_code == 200
            assert (await stranger.get(f"/sessions/{session_id}")).status_code == 404
            assert (await stranger.get(f"/jobs/{job_id}")).status_code == 404
