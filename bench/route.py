"""route: submit→result round trips per second through qmux, against a raw Trio request/reply.

Both sides run the same number of client tasks, each doing the same number of sequential round
trips with the same payload:

* **qmux**: ``job = await session.run("echo", i); await job.result()`` on a zero-work backend
  (`LocalBackend` with ``job_seconds=0``), all clients sharing one session (the multiplexing
  case), or in job mode with no session;
* **baseline**: each client sends ``(i, reply_channel)`` to one worker task over a memory
  channel and awaits the reply; the worker answers with the payload (the echo).

Only the round trips are timed (not opening the service or the session).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

import qmux
from qmux.backends import LocalBackend

from ._common import Result, Row, alternate, configure_logging, median

__all__ = ["run"]

#: issue 16's targets: qmux's rate over raw Trio's (sessions, job mode), and journaled over in memory
TARGET_SESSION = 0.75
TARGET_JOB_MODE = 0.8
TARGET_JOURNAL = 0.8

NOTES = """
**What moved it.** The first full run measured 0.13x (sessions) and 0.33x (job mode): every job
was a task with two cancel scopes. Then per-backend executor tasks that keep one cancel scope and
take the next job handed over as the last ends, an actor that drains its mailbox in bursts and
answers a parked actor's callers in their own task: 0.55x, 0.48x, 0.67x. Then the per-job work
itself, counted with cProfile (``python -m bench --only route --profile --profiler cprofile``):
Python calls per round trip went from 219 to 120 (session, QPU-like), 231 to 133
(simulator-like), 152 to 105 (job mode), 201 to 150 (journal). No Trio Event per job (a job's
waiters are parked tasks in a list made when the first waits), no memory channel or reply Event
per session (a deque made when a message has to wait; a waiting caller is its own parked task);
the scheduler's notices handled by direct calls; Trio's clock read directly; no event-hub call
when nobody listens; the service's callbacks bound once, not per job; per-owner counts of
unfinished jobs kept only once a front door asks for one; per-job debug events not built for a
structlog filtering logger above debug; one schedule point for a journaled submit.

**What limits it now.** By own time (cProfile), Trio's scheduling is 30% (QPU-like) to 36%
(simulator-like) of a run. A QPU-like session takes 2.06 task steps per round trip (the client's
schedule point after its submit, its wait for the result; the executor runs 16 jobs a step); a
simulator-like session and job mode take 3, as the raw baseline does, because each job wakes a
parked executor: that row is about the design floor's (a task per job, 0.7x). The rest is the
job's own Python: the session actor's submit and dispatch (about a fifth), its record and
request (``JobRequest`` is a frozen attrs class: 1.3 microseconds per job in its ``__init__``),
the lookup registry (``Retained.add`` builds an OrderedDict per call for ``setdefault``), its
handle and its id. What would move it next: a slotted, non-frozen ``JobRequest``, that
``setdefault``, and (simulator-like) running a zero-work job without the executor's task switch,
which Trio's one-coroutine-per-task model does not allow.

**Journal.** Every submit waits until its job is on disk (WAL, ``synchronous=FULL``); many
submitters share one commit (10x the clients, beside the same load in memory). Per job the
journal makes about two snapshots (queued, then ended: ``JobSnapshot`` is a frozen attrs class,
1.5 microseconds each) and the store pickles and writes each in its worker thread, under the GIL
the event loop needs: with a store that does nothing (in a thread) the ratio would be about
0.62x, with SQLite's pickling and SQL it is about 0.4x. The in-memory side of the ratio moved
more than the journaled one (jobs/s with the journal: about +45% since the last full run). What
would move it: cheaper snapshots (tuples, or a non-frozen class), one row per job that ends
before its batch is written, pickling on the loop's side in bulk; ``synchronous=NORMAL`` would
too, and SPEC J4 rules it out.
"""


def _qmux_round_trips(
    clients: int, per_client: int, *, concurrency: int, session_mode: bool, journal: bool | str = False
) -> float:
    """Seconds for ``clients * per_client`` round trips through qmux; `journal`: ``True`` for a
    fresh SQLite file, or a journal URL (``postgresql://...``)."""

    async def main() -> float:
        backend = LocalBackend("zero", qmux.BackendConfig(concurrency=concurrency), job_seconds=0.0)
        if isinstance(journal, str):
            return await measure(backend, journal)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "journal.db" if journal else None
            return await measure(backend, path)

    async def measure(backend: LocalBackend, journal_at: Path | str | None) -> float:
        async with qmux.open_service([backend], journal=journal_at) as service:
            submit: Callable[[int], Awaitable[qmux.Job]]
            if session_mode:
                session = qmux.Session(service=service, backend="zero")
                submit = lambda i: session.run("echo", i)  # noqa: E731
            else:
                handle = service.backend("zero")
                submit = lambda i: handle.run("echo", i)  # noqa: E731

            async def client() -> None:
                for i in range(per_client):
                    job = await submit(i)
                    if await job.result() != i:
                        raise AssertionError("echo returned something else")

            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(clients):
                    nursery.start_soon(client)
            elapsed = time.perf_counter() - start
            if session_mode:
                await session.close()
        return elapsed

    return trio.run(main)


def _baseline_round_trips(clients: int, per_client: int) -> float:
    """Seconds for the same round trips as raw Trio: clients → one worker → reply channel."""

    async def main() -> float:
        send, receive = trio.open_memory_channel[tuple[int, trio.MemorySendChannel[int]]](math.inf)

        async def worker() -> None:
            async for payload, reply in receive:
                reply.send_nowait(payload)

        async def client() -> None:
            reply_send, reply_receive = trio.open_memory_channel[int](1)
            for i in range(per_client):
                await send.send((i, reply_send))
                if await reply_receive.receive() != i:
                    raise AssertionError("echo returned something else")

        async with trio.open_nursery() as outer:
            outer.start_soon(worker)
            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(clients):
                    nursery.start_soon(client)
            elapsed = time.perf_counter() - start
            outer.cancel_scope.cancel()
        return elapsed

    return trio.run(main)


def _design_floor_round_trips(clients: int, per_client: int) -> float:
    """Seconds for the same round trips in raw Trio shaped like qmux: one task per job.

    Not a baseline the target reads, but the floor of the design: each round trip makes a job
    record (an Event and a CancelScope), spawns a task that runs the zero-work job inside that
    scope and sets the Event, and the client awaits it, with the checkpoints qmux's calls make.
    What qmux costs beyond this is its own Python, not the shape of the design.
    """

    class Record:
        __slots__ = ("done", "scope", "value")

        def __init__(self) -> None:
            self.done = trio.Event()
            self.scope = trio.CancelScope()
            self.value: int | None = None

    async def main() -> float:
        async with trio.open_nursery() as executions:

            async def execute(record: Record, payload: int) -> None:
                with record.scope:
                    await trio.lowlevel.checkpoint_if_cancelled()
                    record.value = payload
                record.done.set()

            async def client() -> None:
                for i in range(per_client):
                    await trio.lowlevel.checkpoint_if_cancelled()
                    record = Record()
                    executions.start_soon(execute, record, i)
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    await record.done.wait()
                    if record.value != i:
                        raise AssertionError("echo returned something else")

            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(clients):
                    nursery.start_soon(client)
            return time.perf_counter() - start

    return trio.run(main)


def run(quick: bool = False) -> Result:
    configure_logging()
    clients, per_client, rounds = (20, 50, 2) if quick else (100, 100, 5)
    total = clients * per_client
    variants = {
        "session, QPU-like backend (concurrency 1)": {"concurrency": 1, "session_mode": True},
        "session, simulator-like backend (concurrency = clients)": {"concurrency": clients, "session_mode": True},
        "job mode, simulator-like backend (concurrency = clients)": {"concurrency": clients, "session_mode": False},
    }
    journaled = "session, QPU-like, SQLite journal, 10x the clients (each job durable before its submit returns)"
    in_memory_label = "session, QPU-like, no journal, 10x the clients"
    many, few = clients * 10, per_client // 10
    contenders: dict[str, Callable[[], float]] = {
        "baseline": lambda: _baseline_round_trips(clients, per_client),
        "floor": lambda: _design_floor_round_trips(clients, per_client),
    }
    for label, kwargs in variants.items():
        contenders[label] = lambda kw=kwargs: _qmux_round_trips(clients, per_client, **kw)  # type: ignore[misc]
    contenders[journaled] = lambda: _qmux_round_trips(many, few, concurrency=1, session_mode=True, journal=True)
    contenders[in_memory_label] = lambda: _qmux_round_trips(many, few, concurrency=1, session_mode=True)
    samples = alternate(rounds, contenders)
    targets = {
        label: TARGET_SESSION if kwargs["session_mode"] else TARGET_JOB_MODE for label, kwargs in variants.items()
    }
    base_rate = total / median(samples["baseline"])
    result = Result(name="route")
    for label in variants:
        rate = total / median(samples[label])
        ratio = rate / base_rate
        result.rows.append(
            Row(
                measure=f"round trips/s: {label}",
                qmux=rate,
                unit="/s",
                baseline=base_rate,
                ratio=ratio,
                target=f"≥ {targets[label]}x baseline",
                met=ratio >= targets[label],
            )
        )
    in_memory = total / median(samples[in_memory_label])
    journal_rate = total / median(samples[journaled])
    result.rows.append(
        Row(
            measure=f"round trips/s: {journaled}",
            qmux=journal_rate,
            unit="/s",
            baseline=in_memory,
            ratio=journal_rate / in_memory,
            target=f"≥ {TARGET_JOURNAL}x in memory",
            met=journal_rate / in_memory >= TARGET_JOURNAL,
            note="baseline here: the same session and clients without a journal",
        )
    )
    floor_rate = total / median(samples["floor"])
    result.rows.append(
        Row(
            measure="round trips/s: raw Trio shaped like qmux, one task per job (design floor)",
            qmux=floor_rate,
            unit="/s",
            baseline=base_rate,
            ratio=floor_rate / base_rate,
            note="not qmux: what a task and a cancel scope per job cost in raw Trio",
        )
    )
    result.extra = {
        "notes": NOTES,
        "clients": clients,
        "round_trips_per_sample": total,
        "rounds": rounds,
        "samples_seconds": samples,
    }
    result.method = (
        f"{clients} client tasks each do {per_client} sequential round trips ({total:,} per sample). "
        "qmux: `job = await session.run('echo', i); await job.result()` on a `LocalBackend` with "
        "`job_seconds=0` (one session shared by every client), or `backend.run(...)` in job mode. "
        "Baseline: the same clients send `(i, reply_channel)` to one worker task over a Trio memory "
        "channel and await the reply. "
        f"{rounds} rounds after a warm-up, contenders alternating order each round; medians; "
        "ratio = qmux rate / baseline rate."
    )
    return result
