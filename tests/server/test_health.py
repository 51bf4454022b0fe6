"""``GET /livez`` and ``GET /readyz``: what they check, that they need no token, and that they answer under load.

Ready means the journal takes writes, a backend can run jobs, and the server is not shutting
down. A read-only journal is made as ``tests/journal`` makes one (``PRAGMA query_only``, which
refuses writes as a read-only file does), on a real SQLite file. Its writes run in a worker
thread, which an autojumping clock would take for idleness (and jump past the probe's timeout):
those tests take pytest-trio's `mock_clock`, whose time moves only when the test moves it.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

import qmux
from qmux.journal import JobSnapshot, MemoryStore, SessionSnapshot, SQLiteStore
from qmux.server import QmuxApp, ServerSettings, create_app
from qmux.server._health import PROBE_EVERY, PROBE_TIMEOUT
from qmux.server._journal import WatchedJournal
from qmux.testing import job, qpu

from ..support.remote import TENANTS, asgi_client

Clock = trio.testing.MockClock


@asynccontextmanager
async def served(
    journal: WatchedJournal | None = None,
    backends: Sequence[qmux.Backend] | None = None,
    server: ServerSettings | None = None,
) -> AsyncIterator[tuple[QmuxApp, httpx.AsyncClient]]:
    async with qmux.open_service(backends or [qpu("q")], journal=journal) as service:
        app = create_app(service, TENANTS, server, journal=journal)
        async with asgi_client(app, token=None) as anonymous:
            yield app, anonymous


async def ready(http: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await http.get("/readyz", params={"verbose": ""})
    assert "checks" in response.json(), response.text
    checks = {check["name"]: check for check in response.json()["checks"]}
    assert response.json()["status"] == ("ok" if response.status_code == 200 else "failed")
    return response.status_code, checks


def read_only(journal: WatchedJournal, on: bool = True) -> None:
    store = journal.store
    assert isinstance(store, SQLiteStore)
    store._db.execute(f"PRAGMA query_only = {'ON' if on else 'OFF'}")


async def test_livez_answers_without_a_token(autojump_clock: Clock) -> None:
    async with served() as (_, anonymous):
        plain = await anonymous.get("/livez")
        assert (plain.status_code, plain.json()) == (200, {"status": "ok"})
        verbose = await anonymous.get("/livez?verbose")
        assert verbose.json()["checks"] == [{"name": "ping", "ok": True, "detail": "the server answers"}]
        assert (await anonymous.head("/livez")).status_code == 200
        assert (await anonymous.get("/livez?verbose=maybe")).status_code == 422


async def test_readyz_lists_each_check_only_when_asked(autojump_clock: Clock) -> None:
    async with served() as (_, anonymous):
        plain = await anonymous.get("/readyz")
        assert (plain.status_code, plain.json()) == (200, {"status": "ok"})
        for verbose in ("", "1", "true"):
            listed = (await anonymous.get("/readyz", params={"verbose": verbose})).json()
            assert [check["name"] for check in listed["checks"]] == ["journal", "backends", "accepting"]
        assert "checks" not in (await anonymous.get("/readyz?verbose=false")).json()
        status, checks = await ready(anonymous)
    assert status == 200
    assert checks["journal"]["detail"] == "no journal: sessions and jobs are kept in memory only"
    assert checks["backends"]["detail"] == "1 of 1 backends operational"


async def test_readyz_fails_while_the_journal_is_read_only_and_recovers(mock_clock: Clock, tmp_path: Path) -> None:
    journal = WatchedJournal(SQLiteStore(tmp_path / "journal.db"))
    async with served(journal) as (_, anonymous):
        status, checks = await ready(anonymous)
        assert (status, checks["journal"]["detail"]) == (200, "a probe write succeeded")
        read_only(journal)
        status, checks = await ready(anonymous)
        assert status == 200  # the finding of a second ago still stands: at most one probe a second
        mock_clock.jump(PROBE_EVERY)
        status, checks = await ready(anonymous)
        assert status == 503 and not checks["journal"]["ok"]
        assert "a probe write failed" in checks["journal"]["detail"] and "readonly" in checks["journal"]["detail"]
        assert checks["backends"]["ok"] and checks["accepting"]["ok"]  # the others still pass
        assert (await anonymous.get("/livez")).status_code == 200  # alive: restarting would not help
        read_only(journal, on=False)
        mock_clock.jump(PROBE_EVERY)
        assert (await ready(anonymous))[0] == 200


async def test_a_failed_write_of_the_service_makes_it_unready(mock_clock: Clock, tmp_path: Path) -> None:
    journal = WatchedJournal(SQLiteStore(tmp_path / "journal.db"))
    async with served(journal) as (app, anonymous), asgi_client(app) as tenant:
        read_only(journal)
        refused = await tenant.post("/jobs", json={"program_id": "p", "backend": "q", "params": job(0)})
        assert refused.status_code == 503  # not journaled, so not accepted
        status, checks = await ready(anonymous)  # no probe: the service's own write answers
        assert status == 503 and checks["journal"]["detail"].startswith("the latest write failed")
        read_only(journal, on=False)
        accepted = await tenant.post("/jobs", json={"program_id": "p", "backend": "q", "params": job(0)})
        assert accepted.status_code == 201
        status, checks = await ready(anonymous)
        assert (status, checks["journal"]["detail"]) == (200, "the latest write succeeded")


class CountingStore:
    """A store that counts its writes and can be made to hang (a stuck disk)."""

    def __init__(self, *, blocking: bool = False) -> None:
        self.blocking = blocking
        self.inner = MemoryStore()
        self.writes = 0
        self.release = threading.Event()
        self.release.set()

    def write(self, sessions: Sequence[SessionSnapshot], jobs: Sequence[JobSnapshot]) -> None:
        self.writes += 1
        self.release.wait(timeout=30)
        self.inner.write(sessions, jobs)

    def load(self, *, retain_finished: int) -> tuple[list[SessionSnapshot], list[JobSnapshot]]:
        return self.inner.load(retain_finished=retain_finished)

    def close(self) -> None:
        pass


async def test_many_probes_at_once_share_one_probe_write(autojump_clock: Clock) -> None:
    store = CountingStore()
    async with served(WatchedJournal(store)) as (_, anonymous):
        answers: list[int] = []

        async def probe() -> None:
            answers.append((await anonymous.get("/readyz")).status_code)

        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(probe)
        assert answers == [200] * 50
        assert store.writes == 1
        await trio.sleep(PROBE_EVERY)
        await probe()
        assert store.writes == 2


async def test_a_probe_that_hangs_fails_the_check_in_bounded_time(autojump_clock: Clock) -> None:
    store = CountingStore(blocking=True)
    async with served(WatchedJournal(store)) as (_, anonymous):
        store.release.clear()
        start = trio.current_time()
        status, checks = await ready(anonymous)
        assert trio.current_time() - start == pytest.approx(PROBE_TIMEOUT)
        assert (
            status == 503
            and checks["journal"]["detail"] == f"a probe write failed: it did not finish within {PROBE_TIMEOUT:g} s"
        )
        store.release.set()


async def test_readyz_fails_when_no_backend_is_operational(autojump_clock: Clock) -> None:
    async with served(backends=[qpu("q", operational=False), qpu("r", operational=False)]) as (_, anonymous):
        status, checks = await ready(anonymous)
    assert status == 503
    assert checks["backends"] == {"name": "backends", "ok": False, "detail": "0 of 2 backends operational"}


async def test_readyz_fails_once_the_server_begins_to_shut_down(autojump_clock: Clock) -> None:
    async with served() as (app, anonymous):
        assert (await ready(anonymous))[0] == 200
        app.begin_shutdown()
        status, checks = await ready(anonymous)
    assert status == 503 and checks["accepting"]["detail"] == "the server is shutting down: it takes no new work"


async def test_probes_and_metrics_answer_when_the_in_flight_limit_is_reached(autojump_clock: Clock) -> None:
    server = ServerSettings(max_in_flight=1, metrics="public")
    async with served(server=server) as (app, anonymous), asgi_client(app) as tenant:
        created = await tenant.post("/jobs", json={"program_id": "p", "backend": "q", "params": job(60)})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(tenant.get, f"/jobs/{created.json()['id']}/results?wait=30")  # holds the one slot
            await trio.sleep(1)
            assert (await tenant.get("/backends")).status_code == 503  # busy
            assert (await anonymous.get("/livez")).status_code == 200
            assert (await anonymous.get("/readyz")).status_code == 200
            assert (await anonymous.get("/metrics")).status_code == 200
