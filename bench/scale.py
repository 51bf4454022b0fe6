"""scale: memory per idle session at 100,000 sessions, and 10,000 sessions x 10 jobs against raw Trio.

**Memory.** A fresh interpreter opens N sessions (``qmux.Session(service=..., backend=...)``,
handles kept in a list as a user would keep them), waits until every session actor has started and
blocked on its mailbox, collects garbage, and reads (a) the growth of tracemalloc's traced memory
and (b) the growth of the resident set size, each divided by N. The two readings come from two
separate interpreters, because tracemalloc's own bookkeeping inflates the RSS. The baseline is the
floor of the actor model in raw Trio: N tasks each blocked on the receive side of its own memory
channel, the send sides kept in a list.

**Throughput.** N client tasks each open a session, run 10 jobs one after the other
(``await (await session.run("echo", i)).result()``) and close it. Sessions are spread over 100
zero-work, QPU-like backends (concurrency 1), so on each backend the sessions take turns holding
it, as SPEC S7 says. The baseline sends the same number of messages from the same number of client
tasks: each client does 10 request/reply round trips to one of 100 worker tasks over memory
channels. Wall time of the whole (open, jobs, close for qmux), medians of alternating rounds.
"""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any, NoReturn

import trio
import trio.testing

import qmux
from qmux.backends import LocalBackend

from ._common import Result, Row, alternate, configure_logging, median, rss_bytes

__all__ = ["run"]

MEMORY_TARGET = 20 * 1024

NOTES = """
**Reading it.** An idle session now costs less than the floor of one raw Trio task with a memory
channel (about 3.9 KB against 4.6 KB): its mailbox is a deque made only when a message must wait,
its clocks are entries in one heap per service (no cancel scope per actor), and it has no logger
of its own. Opening is synchronous (``Session(...)`` returns at once) and its rate falls as the
heap grows, because Python's cyclic garbage collector rescans the growing heap. The throughput
ratio (2.8x the raw wall time, issue 16's target 2.5x) is the per-job cost seen at scale, plus a
session's open and close: a cProfile of the ``--quick`` run (1,000 sessions) shows Trio's
scheduler first by own time (``unrolled_run``, ``reschedule``: about 6.6 reschedules per job,
where the raw round trip needs 2: client to actor, actor to the backend's executor, executor back
to the actor and the client), then the actor's submit and dispatch. What would move it: running a
zero-latency local job inline in the actor (no hop to an executor task), and starting a
session's task only at its first job. It was the same ratio with 1,000 sessions, so nothing in
the core grows worse than linearly with the number of sessions.
"""
BACKENDS = 100
JOBS_PER_SESSION = 10


# -- memory --------------------------------------------------------------------------------------


def _measure_memory(kind: str, count: int, use_tracemalloc: bool) -> NoReturn:
    """In this (fresh) process: open `count` sessions or raw actors, print their memory as JSON, exit."""
    configure_logging()

    async def main() -> None:
        backend = LocalBackend("idle", qmux.BackendConfig(), job_seconds=0.0)
        async with qmux.open_service([backend]) as service, trio.open_nursery() as nursery:
            await trio.testing.wait_all_tasks_blocked()
            held: list[Any] = []
            gc.collect()
            if use_tracemalloc:
                tracemalloc.start()
            traced_before = tracemalloc.get_traced_memory()[0] if use_tracemalloc else 0
            rss_before = rss_bytes()
            start = time.perf_counter()
            if kind == "qmux":
                for _ in range(count):
                    held.append(qmux.Session(service=service, backend="idle"))
            else:
                for _ in range(count):
                    send, receive = trio.open_memory_channel[object](math.inf)
                    nursery.start_soon(_raw_actor, receive)
                    held.append(send)
            opened = time.perf_counter() - start
            await trio.testing.wait_all_tasks_blocked()
            started = time.perf_counter() - start
            gc.collect()
            traced = tracemalloc.get_traced_memory()[0] - traced_before if use_tracemalloc else 0
            rss = rss_bytes() - rss_before
            if kind == "qmux" and await held[-1].status() != "Pending":
                raise AssertionError("the last session is not idle")
            figures = {
                "per_item_traced": traced / count,
                "per_item_rss": rss / count,
                "open_seconds": opened,
                "started_seconds": started,
            }
            # Report and leave without tearing down: freeing 100,000 sessions takes seconds.
            print(json.dumps(figures), flush=True)
            os._exit(0)

    trio.run(main)
    raise AssertionError("unreachable")


async def _raw_actor(inbox: trio.MemoryReceiveChannel[object]) -> None:
    async for _ in inbox:
        pass


def _memory_in_child(kind: str, count: int, use_tracemalloc: bool) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.scale", "--memory", kind, str(count)]
    if use_tracemalloc:
        command.append("--tracemalloc")
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"memory child {command[3:]} failed:\n{completed.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return figures


# -- throughput ----------------------------------------------------------------------------------


def _qmux_sessions(sessions: int) -> float:
    async def main() -> float:
        config = qmux.BackendConfig(concurrency=1)
        backends = [LocalBackend(f"qpu{b}", config, job_seconds=0.0) for b in range(BACKENDS)]
        async with qmux.open_service(backends) as service:

            async def client(index: int) -> None:
                async with qmux.Session(service=service, backend=f"qpu{index % BACKENDS}") as session:
                    for i in range(JOBS_PER_SESSION):
                        job = await session.run("echo", i)
                        if await job.result() != i:
                            raise AssertionError("echo returned something else")

            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for index in range(sessions):
                    nursery.start_soon(client, index)
            return time.perf_counter() - start

    return trio.run(main)


def _baseline_sessions(sessions: int) -> float:
    async def main() -> float:
        channels = [
            trio.open_memory_channel[tuple[int, trio.MemorySendChannel[int]]](math.inf) for _ in range(BACKENDS)
        ]

        async def worker(inbox: trio.MemoryReceiveChannel[tuple[int, trio.MemorySendChannel[int]]]) -> None:
            async for payload, reply in inbox:
                reply.send_nowait(payload)

        async def client(index: int) -> None:
            send = channels[index % BACKENDS][0]
            reply_send, reply_receive = trio.open_memory_channel[int](1)
            for i in range(JOBS_PER_SESSION):
                await send.send((i, reply_send))
                if await reply_receive.receive() != i:
                    raise AssertionError("echo returned something else")

        async with trio.open_nursery() as outer:
            for _, receive in channels:
                outer.start_soon(worker, receive)
            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for index in range(sessions):
                    nursery.start_soon(client, index)
            elapsed = time.perf_counter() - start
            outer.cancel_scope.cancel()
        return elapsed

    return trio.run(main)


def run(quick: bool = False) -> Result:
    configure_logging()
    idle, busy, rounds = (10_000, 1_000, 1) if quick else (100_000, 10_000, 3)
    result = Result(name="scale")

    memory = {(kind, tm): _memory_in_child(kind, idle, tm) for kind in ("qmux", "baseline") for tm in (False, True)}
    for label, key, tm in (("tracemalloc", "per_item_traced", True), ("RSS", "per_item_rss", False)):
        mine, floor = memory["qmux", tm][key], memory["baseline", tm][key]
        result.rows.append(
            Row(
                measure=f"memory per idle session, {idle:,} open ({label})",
                qmux=mine,
                unit="B",
                baseline=floor,
                ratio=mine / floor if floor else None,
                target="< 20 KB",
                met=mine < MEMORY_TARGET,
            )
        )
    open_rate = idle / memory["qmux", False]["open_seconds"]
    result.rows.append(Row(measure=f"sessions opened per second (to {idle:,})", qmux=open_rate, unit="/s"))

    contenders: dict[str, Callable[[], float]] = {
        "qmux": lambda: _qmux_sessions(busy),
        "baseline": lambda: _baseline_sessions(busy),
    }
    samples = alternate(rounds, contenders, warmup=False)
    mine, floor = median(samples["qmux"]), median(samples["baseline"])
    messages = busy * JOBS_PER_SESSION
    result.rows.append(
        Row(
            measure=f"wall time: {busy:,} sessions x {JOBS_PER_SESSION} jobs ({messages:,} round trips)",
            qmux=mine,
            unit="s",
            baseline=floor,
            ratio=mine / floor,
            note="time ratio: lower is better",
        )
    )
    result.rows.append(
        Row(
            measure=f"jobs/s over {busy:,} sessions on {BACKENDS} backends",
            qmux=messages / mine,
            unit="/s",
            baseline=messages / floor,
            ratio=floor / mine,
        )
    )
    result.extra = {
        "notes": NOTES,
        "memory": {f"{kind} tracemalloc={tm}": v for (kind, tm), v in memory.items()},
        "samples": samples,
    }
    opening = {kind: memory[kind, False] for kind in ("qmux", "baseline")}
    result.method = (__doc__ or "").split("\n\n", 1)[1].strip() + (
        f"\n\nSizes: {idle:,} idle sessions; {busy:,} sessions x {JOBS_PER_SESSION} jobs, {rounds} alternating "
        f"round(s). Opening {idle:,} sessions took {opening['qmux']['open_seconds']:.1f} s, and "
        f"{opening['qmux']['started_seconds']:.1f} s until every actor waited on its mailbox; spawning as many raw "
        f"actors took {opening['baseline']['open_seconds']:.1f} s and {opening['baseline']['started_seconds']:.1f} s "
        "(RSS runs, without tracemalloc)."
    )
    return result


if __name__ == "__main__":
    # python -m bench.scale --memory {qmux,baseline} COUNT [--tracemalloc]: one memory reading as JSON
    if len(sys.argv) >= 4 and sys.argv[1] == "--memory":
        _measure_memory(sys.argv[2], int(sys.argv[3]), "--tracemalloc" in sys.argv[4:])
    raise SystemExit("usage: python -m bench.scale --memory {qmux,baseline} COUNT [--tracemalloc]")
