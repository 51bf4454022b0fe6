"""The database crashes under load and comes back: nothing qmux acknowledged is lost.

Clients submit without pause to a service journaled in PostgreSQL; every PostgreSQL process is
killed with SIGKILL (a crash of the database's machine, fsync on), then the server restarts on
the same data and replays its WAL. Submits during the outage are refused with `StorageError`
(never acknowledged), the service takes submits again once the server is back, without a
restart of its own, and a restarted service finds every job ever acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable

import trio
from attrs import define, field

import qmux
from qmux.backends import LocalBackend

from ..support.journal_worker import outcomes_after_restart
from ..support.postgres import running_postgres

BACKENDS = [
    LocalBackend("a", qmux.BackendConfig(interactive_ttl=0.05), job_seconds=0.005),
    LocalBackend("b", qmux.BackendConfig(interactive_ttl=0.05), job_seconds=0.005),
]
CLIENTS = 8


@define
class _Tally:
    """What the clients saw: acknowledged jobs (id -> n), refused submits; and waits on both."""

    acked: dict[str, int] = field(factory=dict)
    refused: list[int] = field(factory=list)
    _waiting: list[tuple[Callable[[], bool], trio.Event]] = field(factory=list)

    def changed(self) -> None:
        for condition, event in self._waiting:
            if condition():
                event.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        event = trio.Event()
        self._waiting.append((condition, event))
        self.changed()
        await event.wait()
        self._waiting.remove((condition, event))


def test_a_database_crash_under_load_loses_no_acknowledged_job() -> None:
    with running_postgres() as server:  # a server of this test's own: it kills it
        url = server.create_database()
        tally = _Tally()
        acked, refused = tally.acked, tally.refused

        async def load_crash_and_recover() -> None:
            with trio.fail_after(60):
                async with qmux.open_service(BACKENDS, journal=url) as service:
                    stop = trio.Event()

                    async def client(c: int) -> None:
                        for k in range(100_000):
                            if stop.is_set():
                                return
                            n = c * 100_000 + k
                            try:
                                job = await service.backend("ab"[c % 2]).run("echo", {"n": n})
                            except qmux.StorageError:
                                refused.append(n)
                                tally.changed()
                                await trio.sleep(0.01)  # the database is down: a client waits a little
                                continue
                            acked[job.job_id] = n
                            tally.changed()

                    async with trio.open_nursery() as nursery:
                        for c in range(CLIENTS):
                            nursery.start_soon(client, c)
                        await tally.until(lambda: len(acked) >= 100)
                        await trio.to_thread.run_sync(server.crash)
                        await tally.until(lambda: len(refused) >= CLIENTS)
                        acked_before_restart = len(acked)
                        await trio.to_thread.run_sync(server.start)
                        await tally.until(lambda: len(acked) >= acked_before_restart + 100)
                        stop.set()

        trio.run(load_crash_and_recover)
        outcomes = outcomes_after_restart(url, BACKENDS, acked)
    assert set(outcomes) == set(acked)
    assert refused and not set(refused) & set(acked.values())
    assert list(outcomes.values()).count("done") > len(acked) // 2
