"""events: what seeing what runs costs (SPEC E1): an idle subscriber's memory, and events on the route.

**Memory.** N sessions are opened and their actors parked; then each gets one subscriber,
``session.events()``, kept and never read (an agent that follows every session it has). The
growth of tracemalloc's traced memory from the subscriptions, per subscriber, is set beside the
growth from opening the sessions, per session: the cost of following a session, in sessions.

**Route.** The route benchmark's multiplexing case (client tasks sharing one session on a
zero-work, QPU-like backend, ``await (await session.run("echo", i)).result()``), without anyone
listening and with one subscriber reading every event of the session (three per job: queued,
running, done) as fast as they come. Alternating rounds, medians; ratio = rate with a subscriber /
rate without. Without subscribers no event is made at all (publishers ask the hub first), so the
route benchmark itself is unchanged by events.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import Any

import trio
import trio.testing

import qmux
from qmux.backends import LocalBackend

from ._common import Result, Row, alternate, configure_logging, median

__all__ = ["run"]

#: a subscriber may cost at most this share of what its session costs
MEMORY_TARGET = 0.5
#: the route with a subscriber reading every event keeps at least this share of its rate
ROUTE_TARGET = 0.7

NOTES = """
**Reading it.** An idle subscriber is a small object: a list holding the one event it was
given (the session's state), a weak reference in the hub's index of its session (whose callback
forgets it if it is dropped unclosed) and the key it is indexed by; it holds no task and no Trio
Event (a reader that waits is its own parked task). Events are made only when someone listens:
the route rows without a subscriber do the same work as before events existed. With a reader,
each job makes three events (queued, running, done) that the hub fans out and the reader takes
as they come: a reader that had to wait returns the event without yielding again, one that
finds events waiting yields once per event. What limits the ratio is the reader's own task
steps (about two per round trip, where the round trip itself takes two) and the making of each
event (its wall-clock time, its record in the resumption history).
"""


def _memory(count: int) -> tuple[float, float]:
    """Traced bytes per idle session and per idle subscriber (one per session), `count` of each."""

    async def main() -> tuple[float, float]:
        backend = LocalBackend("idle", qmux.BackendConfig(), job_seconds=0.0)
        settings = qmux.ServiceSettings(max_subscribers_per_owner=count)  # all in process: one owner
        async with qmux.open_service([backend], settings=settings) as service:
            await trio.testing.wait_all_tasks_blocked()
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            sessions = [qmux.Session(service=service, backend="idle") for _ in range(count)]
            await trio.testing.wait_all_tasks_blocked()
            gc.collect()
            opened = tracemalloc.get_traced_memory()[0]
            followers: list[Any] = [session.events() for session in sessions]
            await trio.testing.wait_all_tasks_blocked()
            gc.collect()
            followed = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            assert len(followers) == count == service.events_hub.subscriber_count()
            for session in sessions:
                await session.close()
            return (opened - before) / count, (followed - opened) / count

    return trio.run(main)


#: events the readers of the route rows received, and those they were told they missed (lagged)
_READ: dict[str, int] = {"received": 0, "missed": 0}


def _round_trips(clients: int, per_client: int, *, listening: bool) -> float:
    """Seconds for ``clients * per_client`` round trips through one session, with or without a reader."""

    async def main() -> float:
        backend = LocalBackend("zero", qmux.BackendConfig(concurrency=1), job_seconds=0.0)
        async with qmux.open_service([backend]) as service, trio.open_nursery() as readers:
            session = qmux.Session(service=service, backend="zero")
            seen = 0

            async def read() -> None:
                nonlocal seen
                async for event in session.events():
                    if event.kind == "lagged":
                        _READ["missed"] += event.data["missed"]
                        seen += event.data["missed"]
                    else:
                        _READ["received"] += 1
                        seen += 1

            if listening:
                readers.start_soon(read)
                await trio.testing.wait_all_tasks_blocked()

            async def client() -> None:
                for i in range(per_client):
                    if await (await session.run("echo", i)).result() != i:
                        raise AssertionError("echo returned something else")

            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(clients):
                    nursery.start_soon(client)
            elapsed = time.perf_counter() - start
            await session.close()
            await trio.testing.wait_all_tasks_blocked()
            if listening and seen < 3 * clients * per_client:
                raise AssertionError(f"the reader accounts for {seen} events, fewer than the jobs made")
            readers.cancel_scope.cancel()
        return elapsed

    return trio.run(main)


def run(quick: bool = False) -> Result:
    configure_logging()
    sessions = 1_000 if quick else 10_000
    clients, per_client, rounds = (20, 50, 2) if quick else (100, 100, 5)
    per_session, per_subscriber = _memory(sessions)
    samples = alternate(
        rounds,
        {
            "without": lambda: _round_trips(clients, per_client, listening=False),
            "with": lambda: _round_trips(clients, per_client, listening=True),
        },
    )
    total = clients * per_client
    missed = _READ["missed"] / max(1, _READ["missed"] + _READ["received"])
    without, with_reader = total / median(samples["without"]), total / median(samples["with"])
    result = Result(name="events")
    result.rows.append(
        Row(
            measure=f"memory per idle subscriber, session.events() on each of {sessions:,} sessions",
            qmux=per_subscriber,
            unit="B",
            baseline=per_session,
            ratio=per_subscriber / per_session,
            target=f"≤ {MEMORY_TARGET}x a session",
            met=per_subscriber / per_session <= MEMORY_TARGET,
            note="baseline here: the memory of the idle session itself",
        )
    )
    result.rows.append(
        Row(
            measure="round trips/s: one session, QPU-like, one subscriber reading every event",
            qmux=with_reader,
            unit="/s",
            baseline=without,
            ratio=with_reader / without,
            target=f"≥ {ROUTE_TARGET}x without",
            met=with_reader / without >= ROUTE_TARGET,
            note=f"baseline here: the same round trips with nobody listening (no event is made); the reader "
            f"fell behind its buffer and was told it missed {missed:.0%} of the events (lagged)",
        )
    )
    result.extra = {"notes": NOTES, "sessions": sessions, "samples_seconds": samples, "events_read": dict(_READ)}
    result.method = (
        f"Memory: {sessions:,} idle sessions, then one unread `session.events()` each; tracemalloc growth per "
        "subscriber beside growth per session. Route: "
        f"{clients} client tasks each do {per_client} round trips through one shared session on a zero-work "
        "QPU-like `LocalBackend`, with and without one task reading `session.events()`; "
        f"{rounds} rounds after a warm-up, alternating; medians."
    )
    return result
