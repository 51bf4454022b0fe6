"""virtual: an 8-hour session with 1,000 jobs and ITTL gaps, on Trio's mock clock: wall time.

**Method.** ``trio.run(..., clock=trio.testing.MockClock(autojump_threshold=0))``: whenever every
task is blocked, the clock jumps to the next deadline, so virtual hours cost only the work done.
One session with ``max_time="8h"`` on a QPU-like `LocalBackend` (8 s per job, ITTL 60 s). The
client runs 1,000 jobs one after the other; after each it pauses 2 s, except every fourth pause,
which is 74 s: longer than the ITTL, so the session is deactivated (S9) and reactivated by its
next job, 250 times. The jobs and pauses take 28,000 virtual seconds; then the client waits for
max_time to run out (S10), at 28,800 s. The run checks the 250 deactivations and the max_time
close in ``details()``.

**Baseline.** The same timeline in raw Trio on the same mock clock: the client sends each job to a
worker task over a memory channel, the worker sleeps 8 s and replies, the client pauses as above
and finally sleeps until 8 h. Medians of alternating rounds; the target is on qmux's absolute
wall time.
"""

from __future__ import annotations

import math
import time

import trio
import trio.testing

import qmux
from qmux.backends import LocalBackend

from ._common import Result, Row, alternate, configure_logging, median

__all__ = ["run"]

JOBS = 1_000
JOB_SECONDS = 8.0
ITTL = 60.0
MAX_TIME = 8 * 3600.0
TARGET_SECONDS = 1.0


def _gap(index: int) -> float:
    return 74.0 if index % 4 == 3 else 2.0


def _qmux_virtual(jobs: int) -> float:
    checks: dict[str, object] = {}

    async def main() -> None:
        config = qmux.BackendConfig(interactive_ttl=ITTL, max_ttl=MAX_TIME)
        backend = LocalBackend("qpu", config, job_seconds=JOB_SECONDS)
        async with qmux.open_service([backend]) as service:
            session = qmux.Session(service=service, backend="qpu", max_time="8h")
            for index in range(jobs):
                job = await session.run("echo", index)
                if await job.result() != index:
                    raise AssertionError("echo returned something else")
                await trio.sleep(_gap(index))
            await trio.sleep_until(MAX_TIME + 1.0)
            details = await session.details()
            checks["deactivations"] = sum(1 for entry in details["timestamps"] if entry["status"] == "inactive")
            checks["closed_reason"] = details.get("closed_reason")
            checks["virtual_seconds"] = trio.current_time()

    start = time.perf_counter()
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    elapsed = time.perf_counter() - start
    expected = sum(1 for index in range(jobs) if _gap(index) > ITTL)
    if checks["deactivations"] != expected or checks["closed_reason"] != "max_time":
        raise AssertionError(f"the session did not do what the timeline says: {checks}, expected {expected}")
    return elapsed


def _baseline_virtual(jobs: int) -> float:
    async def main() -> None:
        send, receive = trio.open_memory_channel[tuple[int, trio.MemorySendChannel[int]]](math.inf)

        async def worker() -> None:
            async for payload, reply in receive:
                await trio.sleep(JOB_SECONDS)
                reply.send_nowait(payload)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker)
            reply_send, reply_receive = trio.open_memory_channel[int](1)
            for index in range(jobs):
                await send.send((index, reply_send))
                if await reply_receive.receive() != index:
                    raise AssertionError("echo returned something else")
                await trio.sleep(_gap(index))
            await trio.sleep_until(MAX_TIME + 1.0)
            nursery.cancel_scope.cancel()

    start = time.perf_counter()
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return time.perf_counter() - start


def run(quick: bool = False) -> Result:
    configure_logging()
    rounds = 1 if quick else 5
    samples = alternate(rounds, {"qmux": lambda: _qmux_virtual(JOBS), "baseline": lambda: _baseline_virtual(JOBS)})
    mine, floor = median(samples["qmux"]), median(samples["baseline"])
    result = Result(name="virtual")
    result.rows.append(
        Row(
            measure=f"wall time: 8 h session, {JOBS:,} jobs, {JOBS // 4} ITTL gaps (mock clock)",
            qmux=mine,
            unit="s",
            baseline=floor,
            ratio=mine / floor,
            target=f"< {TARGET_SECONDS:g} s",
            met=mine < TARGET_SECONDS,
        )
    )
    result.extra = {"samples_seconds": samples}
    result.method = (__doc__ or "").split("\n\n", 1)[1].strip() + f"\n\n{rounds} round(s) after a warm-up."
    return result
