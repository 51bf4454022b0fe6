"""cluster: failover time of a qmux cluster, and route throughput on the PostgreSQL journal.

Both on a PostgreSQL server this benchmark starts itself (Debian's binaries, a throw-away
cluster in a temporary directory, loopback only, fsync on: ``tests/support/postgres.py``);
skipped when the binaries are missing.

**Failover.** Two ``qmux serve`` nodes (real processes, `tests/support/cluster.py`) share a
fresh database; node 1 prefers backend ``a``, node 2 backend ``b``, lease `LEASE`. A client
connected to node 2 submits job-mode jobs to ``a`` without pause (forwarded to node 1), node 1 is
killed with SIGKILL, and the time from the kill to the first job accepted for ``a`` again (node 2
took ``a`` over: the lease expired, then a third of a lease, since node 2 does not prefer it)
is one sample. Median and max over `REPEATS` fresh clusters; target: under lease + 2 s.

**Route, PostgreSQL vs SQLite.** ``bench.route``'s journaled row (200 clients, one session,
QPU-like zero-work backend, each job durable before its submit returns) with the journal in
PostgreSQL (a fresh database per sample) against a SQLite file, alternating round by round.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import trio

import qmux

from ._common import Result, Row, alternate, configure_logging, median
from .route import _qmux_round_trips

__all__ = ["run"]

LEASE = 2.0
REPEATS = 3
#: failover must end within the lease plus this
SLACK = 2.0


def _failover_seconds(folder: Path, journal: str) -> float:
    from tests.support.cluster import TOKEN, start_nodes

    folder.mkdir()
    nodes = start_nodes(folder, journal, {"n1": ["a"], "n2": ["b"]}, lease=LEASE, job_seconds=0.001)
    try:

        async def main() -> float:
            async with qmux.connect(nodes[1].url, token=TOKEN, retries=0, timeout=10) as service:
                backend = service.backend("a")
                for i in range(20):  # a node 1 that serves: forwarded and answered
                    await backend.run("echo", i)
                killed = time.perf_counter()
                await trio.to_thread.run_sync(nodes[0].kill)
                with trio.fail_after(LEASE * 5 + 30):
                    while True:
                        try:
                            await backend.run("echo", "after")
                            return time.perf_counter() - killed
                        except qmux.QmuxError:
                            await trio.sleep(0.01)  # between nodes: refused, not acknowledged

        return trio.run(main)
    finally:
        for node in nodes:
            node.stop()


def run(quick: bool = False) -> Result:
    configure_logging()
    from tests.support.postgres import find_binaries, running_postgres

    result = Result(name="cluster")
    if find_binaries() is None:
        result.skipped = "PostgreSQL's server binaries are not installed (apt-get install postgresql)"
        return result
    repeats, rounds = (1, 1) if quick else (REPEATS, 3)
    clients, per_client = (200, 5) if quick else (200, 10)
    with running_postgres() as server, tempfile.TemporaryDirectory(prefix="qmux-bench-cluster-") as folder:
        failovers = [_failover_seconds(Path(folder) / f"r{i}", server.create_database()) for i in range(repeats)]
        contenders = {
            "sqlite": lambda: _qmux_round_trips(clients, per_client, concurrency=1, session_mode=True, journal=True),
            "postgres": lambda: _qmux_round_trips(
                clients, per_client, concurrency=1, session_mode=True, journal=server.create_database()
            ),
        }
        samples = alternate(rounds, contenders)
    total = clients * per_client
    sqlite_rate, postgres_rate = total / median(samples["sqlite"]), total / median(samples["postgres"])
    worst = max(failovers)
    result.rows.append(
        Row(
            measure=f"failover, SIGKILL of the owner to the first job accepted again (lease {LEASE:g} s), median",
            qmux=median(failovers),
            unit="s",
            target=f"< lease + {SLACK:g} s",
            met=median(failovers) < LEASE + SLACK,
        )
    )
    result.rows.append(
        Row(
            measure=f"failover, the same, max of {repeats}",
            qmux=worst,
            unit="s",
            target=f"< lease + {SLACK:g} s",
            met=worst < LEASE + SLACK,
        )
    )
    result.rows.append(
        Row(
            measure=f"round trips/s: session, QPU-like, {clients} clients, PostgreSQL journal vs SQLite journal",
            qmux=postgres_rate,
            unit="/s",
            baseline=sqlite_rate,
            ratio=postgres_rate / sqlite_rate,
            note="baseline here: the same load on a SQLite journal",
        )
    )
    result.extra = {"failover_seconds": failovers, "samples_seconds": samples}
    result.method = __doc__ or ""
    return result
