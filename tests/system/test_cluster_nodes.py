"""Nodes of a cluster in one process, on a real PostgreSQL server: ownership, hand-over, lost leases.

Each node is a `qmux.cluster.Node` with its own service (`open_node`), as ``qmux serve`` runs
it, sharing one database; real time, short leases, every wait bounded. What is checked: each
backend is served by exactly one node; a graceful stop hands a backend over at once (no wait for
expiry) with its open session and queued jobs (SPEC J4); a node that cannot renew stops before
its lease could expire, writes nothing more, and another node takes the backend over.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import pytest
import trio

import qmux
from qmux.backends import LocalBackend
from qmux.cluster import ClusterSettings, LeaseLostError, Node, open_node

LEASE = 1.5
SETTINGS = qmux.ServiceSettings(shutdown_grace=5)


def _backends() -> list[qmux.Backend]:
    config = qmux.BackendConfig(interactive_ttl=30)
    return [LocalBackend("a", config, job_seconds=0.3), LocalBackend("b", config, job_seconds=0.3)]


def _node(url: str, name: str, prefer: Sequence[str]) -> Node:
    settings = ClusterSettings(name, f"http://{name}.test:8765", lease=LEASE, prefer=tuple(prefer))
    return Node(settings, url, _backends(), retain_finished=1000)


@asynccontextmanager
async def _running(node: Node) -> AsyncIterator[tuple[qmux.Service, trio.Event, trio.Event]]:
    """`node` serving in the background; set the first event to stop it; the second is set once stopped."""
    stop, stopped = trio.Event(), trio.Event()
    outcome: list[BaseException] = []

    async def serve(task_status: trio.TaskStatus[qmux.Service]) -> None:
        try:
            async with open_node(node, settings=SETTINGS) as service:
                task_status.started(service)
                await stop.wait()
        except LeaseLostError as exc:
            outcome.append(exc)
        finally:
            stopped.set()

    async with trio.open_nursery() as nursery:
        service = await nursery.start(serve)
        yield service, stop, stopped
        stop.set()
    if outcome:
        raise outcome[0]


async def _until(condition: Callable[[], bool], timeout: float = 15) -> float:
    """Wait (real time, polled: the node's state has no event to wait on) until `condition()` holds;
    how long it took."""
    started = time.monotonic()
    with trio.fail_after(timeout):
        while True:
            if condition():
                return time.monotonic() - started
            await trio.sleep(0.02)


async def test_J4_each_backend_has_one_node_and_a_graceful_stop_hands_it_over_at_once(postgres_url: str) -> None:
    # node-b prefers a too (node-a, started first, takes it): told of its release, it takes it at once
    first, second = _node(postgres_url, "node-a", ["a"]), _node(postgres_url, "node-b", ["b", "a"])
    with trio.fail_after(60):
        async with _running(first) as (on_first, stop_first, first_stopped), _running(second) as (on_second, _, _):
            assert first.held() == ["a"] and second.held() == ["b"]
            assert on_first.serves("a") and not on_first.serves("b")
            assert on_second.serves("b") and not on_second.serves("a")
            assert sorted(h.name for h in on_first.backends()) == ["a", "b"]  # each node lists every backend
            await trio.sleep(LEASE)  # past a renewal: still one owner each
            assert first.held() == ["a"] and second.held() == ["b"]

            session = qmux.Session(service=on_first, backend="a", max_time=600)
            jobs = [await session.run("echo", n) for n in range(4)]
            await trio.sleep(0.1)  # the first runs, three wait
            stop_first.set()
            await first_stopped.wait()
            took = await _until(lambda: second.held() == ["a", "b"])
            assert took < LEASE / 2, f"the hand-over waited {took:.2f}s: as long as an expiry"

            assert await (await on_second.job(jobs[0].job_id)).result() == 0  # ran on node-a, recorded
            for n, job in enumerate(jobs[1:], start=1):  # queued on node-a, run by node-b
                assert await (await on_second.job(job.job_id)).result() == n
            moved = await on_second.session(session.session_id)
            assert (await moved.details())["state"] != "closed"


async def test_J4_a_node_that_cannot_renew_stops_before_its_lease_expires_and_another_takes_over(
    postgres_url: str,
) -> None:
    first, second = _node(postgres_url, "node-a", ["a"]), _node(postgres_url, "node-b", ["b"])
    cut_at: list[float] = []

    def partitioned(*args: object, **kwargs: object) -> None:  # the database no longer answers this node
        if not cut_at:
            cut_at.append(time.monotonic())
        raise qmux.StorageError("cannot reach the journal: connection refused (a partition)")

    with trio.fail_after(60):
        with pytest.raises(LeaseLostError, match="could not renew it before it could expire"):
            async with _running(first) as (on_first, _, first_stopped), _running(second) as (on_second, _, _):
                queued_for = on_first.backend("a")
                running = await queued_for.run("echo", "interrupted")
                queued = [await queued_for.run("echo", n) for n in range(3)]
                await trio.sleep(0.1)
                first.leases.renew = first.leases.release = partitioned  # type: ignore[method-assign]
                first.store.store.write = partitioned  # type: ignore[method-assign]
                await first_stopped.wait()
                stopped_after = time.monotonic() - cut_at[0]
                # it stopped before the database could give its lease to anyone: the lease is still its own
                assert stopped_after < LEASE
                holder = await trio.to_thread.run_sync(second.leases.holder, "a")
                assert holder is not None and holder[0] == "node-a", holder

                await _until(lambda: second.held() == ["a", "b"])
                with pytest.raises(qmux.JobFailedError) as failed:
                    await (await on_second.job(running.job_id)).result()
                assert failed.value.reason == "interrupted_by_restart"
                assert [await (await on_second.job(job.job_id)).result() for job in queued] == [0, 1, 2]
