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

TARGET = 0.5

NOTES = """
**What moved it.** The first full run measured 0.13x (sessions) and 0.33x (job mode). Profiles
(py-spy, pyinstrument, cProfile) showed Trio scheduler passes and cancel scopes, not qmux's own
logic, dominating: every job was a new task with two cancel scopes, the actor took one message
per scheduler pass, and a QPU-like session needed two passes per job (the actor had to run again
to dispatch the next job). Applied since: per-backend executor tasks that keep one cancel scope
until someone cancels (no `job_timeout` scope unless one is set) and run up to 16 handed-over
jobs back to back before yielding; the actor drains up to 64 waiting messages per pass; the
scheduler's news (backend granted, job ended) and a parked actor's callers are handled at once,
whole, without a trip through the scheduler; ids come from a pooled CSPRNG buffer. Result:
0.55x, 0.48x and 0.67x.

**What limits it now.** Counted with cProfile (calls per round trip, the same from run to run)
and sampled with pyinstrument (``python -m bench --only route --quick --profile``): a round trip
makes about 180 Python calls in a QPU-like session, 195 in a simulator-like one, 135 in job mode
and 255 with the journal, against 94 for the baseline and 135 for the design floor. By self
time, Trio's scheduling (task switches, Events, ``reschedule``) is 27-31%; in the session rows
the session actor's submit path (``_call``, ``_serve``, ``_handle``, ``_on_submit``,
``_dispatch``) and its handling of the job-finished notice are a quarter; the executor and the
scheduler (``_run_one``, ``_release``/``_settle``, ``_pump``/``_launch``) 12-20%; the job's record
(its Event, ``get_result``) 5-8%. In job mode ``Service.submit_job`` adds its
checks, the lookup record (``Retained.add``) and a log call through structlog's lazy proxy (two
more calls per event than a logger bound once). What would move the session rows: one Event (or
a parked task woken directly) per job instead of a reply slot's and a record's, and fewer calls
on the submit path; the simulator-like row also hands every job to a different executor task.

**Journal.** With a SQLite journal every submit waits until its job is on disk (WAL,
`synchronous=FULL`); many submitters share one commit. Closed-loop clients are latency-bound
(each waits for a commit before its next job), so the row uses 10x the clients, beside the same
load in memory. Rows are built once per batch from the latest state and written with multi-row
statements in a worker thread. What limits it is the commit itself: timed in an exploratory
run, about half of the wall time was spent in the store's ``write`` (about a millisecond per
commit on this disk, 13 jobs per commit with 20 clients, 111 with 200), with the event loop
idle, because every submitter was waiting for that commit (SPEC J4: accepted means durable).
More submitters per commit move it; a weaker sync (``synchronous=NORMAL``, durable across a
crash of the process but not of the machine) would too, and J4 rules it out.
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
                target=f"≥ {TARGET}x baseline",
                met=ratio >= TARGET,
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
            target="≥ 0.5x in memory",
            met=journal_rate / in_memory >= 0.5,
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
