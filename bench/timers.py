"""timers: how late ITTL deactivations and max_time expiries fire, with 10,000 live sessions.

**Method.** Each of N sessions gets its own zero-work backend (a backend has one active session
at a time, SPEC S7, so N live ITTL clocks need N backends) with its own ITTL, and its own
max_time. All N are opened first (idle), then one task submits each session's first job, one
after the other, spread evenly over a ramp shorter than the shortest ITTL: the job starts the
session and its max_time clock (S3, S10) and, when it ends, its ITTL clock (S8). ITTL and
max_time grow with the session's rank, so the deadlines fall due spread over a few seconds
after the ramp, not all at once, and not while the ramp is still busy submitting. Nobody
touches the sessions again until every deadline is past; then ``details()`` of each session
gives, on qmux's own clock:

* **ITTL lateness** = time of the ``inactive`` state change - (``last_job_completed`` +
  ``interactive_timeout``): the deadline the actor set is exactly the job's end plus the ITTL;
* **max_time lateness** = time of the ``closed`` state change - (``started_at`` + ``max_time``).

The state-change time is ``trio.current_time()`` read by the actor when it acts on the deadline
(the session actor keeps its clocks as the deadline of the one cancel scope it waits in), so the
difference is how late the actor woke, end to end: Trio's timer wheel, the scheduler's
batching and the actor's handling, with microsecond resolution (the timestamps are ISO-8601 with
microseconds on the same clock; no polling, no change to the core).

**Baseline.** The floor in raw Trio: N tasks, each waiting in ``trio.move_on_at(deadline)`` on
the same two staggered deadlines and reading ``trio.current_time()`` when it wakes. The same ramp
starts each task. Both run on the real clock, one after the other in the same process.
"""

from __future__ import annotations

import datetime as dt
import gc
from typing import Any

import trio

import qmux
from qmux.backends import LocalBackend

from ._common import Result, Row, configure_logging, percentile

__all__ = ["run"]

NOTES = """
**What limits it.** Not the clocks: with the cyclic garbage collector off (the diagnostic rows)
qmux's lateness is within a fraction of a millisecond of raw Trio's in the same run; most of
either is the event loop's whole-millisecond sleep and, on a shared machine, other processes.
With the collector on, a full (generation 2) collection over the heap of 10,000 sessions and
10,000 backends (37 GC-tracked objects per idle session, 10 per backend; about half a million in
all) stops the loop for tens of milliseconds (40-60 ms while the deadlines fell due, up to 230 ms
while opening, timed with ``gc.callbacks`` in exploratory runs); at about 2.5 deadlines per
millisecond, one such pause delays a hundred or more deadlines, over 1% of them, so p99 is the
pause. Raw Trio's heap is several times smaller and its pauses too short to show.

**What would move it.** Fewer GC-tracked objects per session and per job: a session's mailbox is
a Trio memory channel (about 8 tracked objects: two channel ends, their state, a deque, two
OrderedDicts, sets); a plain deque with the actor parked on it directly would do; the per-session
and per-backend bound loggers (``_log.bind``) could be replaced by passing ``session_id`` per
event. Python 3.14's incremental collector splits full collections into small steps. An
application with long-lived sessions can ``gc.freeze()`` after start-up; in an exploratory run it
shortened the pauses (p99 about 15 ms) but did not remove the ones over what was allocated since.
"""

TARGET_P99_MS = 2.0


def _sizes(quick: bool) -> tuple[int, float, float, float, float, float]:
    """count, ramp, ITTL base and spread, max_time base and spread (seconds)."""
    return (1_000, 0.5, 1.0, 0.5, 2.0, 0.5) if quick else (10_000, 2.0, 3.0, 2.0, 6.0, 2.0)


def _schedule(quick: bool) -> list[tuple[float, float, float]]:
    """(first job at, ITTL, max_time) of session i, staggered so that the deadlines spread out."""
    count, ramp, ittl_base, ittl_spread, max_base, max_spread = _sizes(quick)
    return [
        (ramp * i / count, ittl_base + ittl_spread * i / count, max_base + max_spread * i / count) for i in range(count)
    ]


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _seconds(later: str, earlier: str) -> float:
    return (_parse(later) - _parse(earlier)).total_seconds()


def _qmux_lateness(schedule: list[tuple[float, float, float]], *, gc_off: bool = False) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        backends = [
            LocalBackend(f"b{i}", qmux.BackendConfig(interactive_ttl=ittl, max_ttl=3600.0), job_seconds=0.0)
            for i, (_, ittl, _) in enumerate(schedule)
        ]
        async with qmux.open_service(backends) as service:
            sessions = [
                qmux.Session(service=service, backend=f"b{i}", max_time=max_time)
                for i, (_, _, max_time) in enumerate(schedule)
            ]
            await trio.sleep(0.2)  # every actor has started and waits on its mailbox
            if gc_off:  # the diagnostic run: no cyclic-GC pause while the deadlines fall due
                gc.collect()
                gc.disable()
            t0 = trio.current_time()
            for index, (session, (at, _, _)) in enumerate(zip(sessions, schedule, strict=True)):
                await trio.sleep_until(t0 + at)
                await session.run("echo", index)  # starts the session (max_time) and, once done, its ITTL
            ramp = trio.current_time() - t0
            await trio.sleep_until(t0 + max(at + max_time for at, _, max_time in schedule) + 0.5)
            gc.enable()

            ittl_late: list[float] = []
            max_late: list[float] = []
            for session in sessions:
                details = await session.details()
                changes = {entry["status"]: entry["timestamp"] for entry in details["timestamps"]}
                if "inactive" in changes:
                    late = _seconds(changes["inactive"], details["last_job_completed"]) - details["interactive_timeout"]
                    ittl_late.append(late)
                if details.get("closed_reason") == "max_time" and "closed" in changes:
                    max_late.append(_seconds(changes["closed"], details["started_at"]) - details["max_time"])
        return {"ittl": ittl_late, "max_time": max_late, "ramp_seconds": ramp}

    return trio.run(main)


def _baseline_lateness(schedule: list[tuple[float, float, float]]) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        ittl_late: list[float] = []
        max_late: list[float] = []
        t0 = trio.current_time() + 0.2

        async def waiter(at: float, ittl: float, max_time: float) -> None:
            await trio.sleep_until(t0 + at)
            start = trio.current_time()
            for deadline, into in ((start + ittl, ittl_late), (start + max_time, max_late)):
                with trio.move_on_at(deadline):
                    await trio.sleep_forever()
                into.append(trio.current_time() - deadline)

        async with trio.open_nursery() as nursery:
            for at, ittl, max_time in schedule:
                nursery.start_soon(waiter, at, ittl, max_time)
        return {"ittl": ittl_late, "max_time": max_late}

    return trio.run(main)


def _summary(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50": percentile(ms, 50),
        "p99": percentile(ms, 99),
        "max": max(ms, default=float("nan")),
        "min": min(ms, default=float("nan")),
    }


def run(quick: bool = False) -> Result:
    configure_logging()
    schedule = _schedule(quick)
    count = len(schedule)
    baseline = _baseline_lateness(schedule)
    mine = _qmux_lateness(schedule)
    diagnostic = _qmux_lateness(schedule, gc_off=True)
    result = Result(name="timers")
    stats: dict[str, Any] = {}
    for clock, label in (("ittl", "ITTL deactivation"), ("max_time", "max_time expiry")):
        ours, floor, no_gc = _summary(mine[clock]), _summary(baseline[clock]), _summary(diagnostic[clock])
        stats[clock] = {"qmux": ours, "baseline": floor, "qmux, cyclic GC off": no_gc}
        if ours["n"] != count or no_gc["n"] != count:
            raise AssertionError(f"{label}: {ours['n']} and {no_gc['n']} of {count} sessions fired")
        for q in ("p50", "p99", "max"):
            result.rows.append(
                Row(
                    measure=f"{label} lateness {q}, {count:,} live sessions",
                    qmux=ours[q],
                    unit="ms",
                    baseline=floor[q],
                    target="< 2 ms" if q == "p99" else "",
                    met=ours[q] < TARGET_P99_MS if q == "p99" else None,
                )
            )
        result.rows.append(
            Row(
                measure=f"{label} lateness p99, cyclic GC off (diagnostic)",
                qmux=no_gc["p99"],
                unit="ms",
                baseline=floor["p99"],
                note=f"max {no_gc['max']:.1f} ms",
            )
        )
    result.extra = {"notes": NOTES, "stats_ms": stats, "ramp_seconds": mine["ramp_seconds"]}
    _, ramp, ittl_base, ittl_spread, max_base, max_spread = _sizes(quick)
    result.method = (__doc__ or "").split("\n\n", 1)[1].strip() + (
        f"\n\nSizes: {count:,} sessions; first jobs spread over {ramp:g} s (the submissions took "
        f"{mine['ramp_seconds']:.2f} s), ITTL {ittl_base:g}-{ittl_base + ittl_spread:g} s and max_time "
        f"{max_base:g}-{max_base + max_spread:g} s, both growing with the session's rank, so that about "
        f"{count / (ramp + ittl_spread) / 1000:.1f} deadlines fall due per millisecond. "
        f"Minimum lateness (ms), qmux / baseline: ITTL {stats['ittl']['qmux']['min']:.3f} / "
        f"{stats['ittl']['baseline']['min']:.3f}, max_time {stats['max_time']['qmux']['min']:.3f} / "
        f"{stats['max_time']['baseline']['min']:.3f}. Part of every lateness, on both sides, is the "
        "event loop's sleep: Trio asks epoll for a timeout in whole milliseconds, rounded up. "
        "The diagnostic rows repeat the qmux run with Python's cyclic garbage collector disabled "
        "(`gc.disable()`) from the end of opening to the last deadline: the difference is the "
        "collector's pauses, which grow with the heap (10,000 sessions and 10,000 backends) and "
        "stop the event loop for tens of milliseconds, delaying every deadline that falls due meanwhile."
    )
    return result
