"""objects: GC-tracked objects per idle session, per backend that has run a job, per job in flight.

**Method.** A full collection's pause grows with the number of objects the cyclic garbage
collector tracks, so this benchmark counts them, deterministically: no clock is read. For each
kind of item, a census (``gc.collect()``, then ``gc.get_objects()`` grouped by type) is taken, N
items are added, and a second census is taken; then N more items are added and a third census
taken. The figure is the growth between the second and the third census divided by N: the first
batch pays for whatever is created once (caches, a first task, a structlog logger's first use), so
the second batch costs exactly what one more item costs. Everything runs on a
``trio.testing.MockClock`` that does not move, so no clock fires and no job finishes on its own.

* **idle session**: ``qmux.Session(service=..., backend=...)`` on one backend, the handle kept
  in a list, after its actor has started and blocked on its mailbox. Baseline: the floor of the
  actor model in raw Trio, one task blocked on the receive side of its own memory channel, the
  send side kept in a list.
* **backend that has run a job**: a service over N zero-work `LocalBackend`s each of which has
  run one ``echo`` job (so its executor task exists and is parked), against one over 2N. The
  backend objects themselves are the user's and are made before the first census; what is
  counted is what the service keeps per backend. Baseline: one raw worker task per backend,
  blocked on its own memory channel.
* **job in flight**: the ``Job`` handle kept by its submitter, and everything the service keeps
  for it: (a) queued in a session behind a running job, (b) running (a backend with one slot
  per job and 10 s of device time that never passes), (c) queued in job mode in a busy backend's
  line, and (d) finished, kept by the service for lookup by id (``retain_finished``), its
  handle dropped. The submitter's own task waiting on ``job.result()`` is not counted. Baseline: a raw
  Trio request in flight, the ``(payload, reply_channel)`` tuple in the worker's memory channel
  (the reply channel is the client's and is reused).
"""

from __future__ import annotations

import gc
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import attrs
import trio
import trio.testing

import qmux
from qmux.backends import LocalBackend

from ._common import Result, Row, configure_logging

__all__ = ["Census", "census", "per_item", "run", "tracked_by_type"]

NOTES = """
**Reading it.** The cyclic collector's full passes visit every tracked object, so these counts,
times the number of live sessions, backends and jobs, are what a full collection scans (plus
the interpreter's own modules, which the service's ``gc="freeze"`` policy takes out of the
scans). The type breakdown above says where each item's objects come from.

**What moved it.** Per idle session 39 to 19 (fewer than the raw floor's 22: qmux's actor has no
channel and waits in no cancel scope of its own): a mailbox that is a deque made when a message
has to wait, the actor parked directly, its clocks an entry in its service's heap, no logger
bound per session, slots, the service's callbacks bound once and shared. Per job 8 to 3 queued
and 7 to 2 finished: no Trio Event per job, and no bound method per job for its canceller,
observer and queue position. What is left of an idle session is its Trio task (task, context,
coroutine, Trio's parking objects, about 8), its handle, actor, machine, deadlines, terms, queue,
running set and history list; of a running job, mostly its executor task and the backend's own
``trio.sleep``.
"""


def tracked_by_type() -> dict[str, int]:
    """Collect garbage, then count the objects the cyclic collector tracks, by type name.

    A plain dict of strings and ints, which CPython does not track: the census is not in the next one.
    """
    gc.collect()
    return dict(Counter(_type_name(type(obj)) for obj in gc.get_objects()))


def _type_name(kind: type) -> str:
    module = kind.__module__ if isinstance(kind.__module__, str) else "?"  # a few types have no module
    return kind.__qualname__ if module == "builtins" else f"{module.split('.')[0]}.{kind.__qualname__}"


@dataclass
class Census:
    """What one more item costs in GC-tracked objects, in all and by type."""

    per_item: float
    by_type: dict[str, float] = field(default_factory=dict)

    def breakdown(self, top: int = 12) -> str:
        """The largest contributors, e.g. ``set 5, list 3, trio.CancelScope 1, ...``."""
        ordered = sorted(self.by_type.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        return ", ".join(f"{name} {count:g}" for name, count in ordered)


async def per_item(add: Callable[[int], Awaitable[object]], count: int) -> Census:
    """Objects per item: census, `add` `count` items, census, add `count` more, census.

    `add(n)` adds n more items and keeps them alive (in a list it holds, say). The growth of the
    second batch, divided by `count`, is the cost of one item: the first batch absorbs whatever is
    created once. Tasks are let run until all are blocked before each census.
    """
    tracked_by_type()  # the census's own first use (caches it fills once) is not an item's
    await add(count)
    await trio.testing.wait_all_tasks_blocked()
    before = tracked_by_type()
    await add(count)
    await trio.testing.wait_all_tasks_blocked()
    return _growth(before, tracked_by_type(), count)


def _growth(before: dict[str, int], after: dict[str, int], count: int) -> Census:
    by_type = {name: (after.get(name, 0) - before.get(name, 0)) / count for name in after.keys() | before.keys()}
    return Census(
        per_item=(sum(after.values()) - sum(before.values())) / count,
        by_type={name: value for name, value in by_type.items() if abs(value) >= 0.01},
    )


def census(
    measure: Callable[[], Awaitable[Census]],
) -> Census:
    """Run `measure` in a fresh ``trio.run`` on a mock clock that never moves (so no deadline fires)."""
    return trio.run(measure, clock=trio.testing.MockClock())


# -- what is counted ------------------------------------------------------------------------------

#: the services counted: ``gc.get_objects()`` does not see frozen objects, so nothing is frozen here
_COUNTING = qmux.ServiceSettings(gc="default", shutdown_grace=0)


async def idle_sessions(count: int) -> Census:
    """Objects per idle session (opened, never given a job)."""
    backend = LocalBackend("idle", qmux.BackendConfig(), job_seconds=0.0)
    async with qmux.open_service([backend], settings=_COUNTING) as service:
        held: list[qmux.Session] = []

        async def add(n: int) -> None:
            held.extend(qmux.Session(service=service, backend="idle") for _ in range(n))

        found = await per_item(add, count)
        for session in held:
            await session.cancel()
    return found


async def raw_actors(count: int) -> Census:
    """Baseline: one raw Trio task per actor, blocked on its own memory channel."""
    held: list[trio.MemorySendChannel[object]] = []
    async with trio.open_nursery() as nursery:

        async def add(n: int) -> None:
            for _ in range(n):
                send, receive = trio.open_memory_channel[object](math.inf)
                nursery.start_soon(_raw_actor, receive)
                held.append(send)

        found = await per_item(add, count)
        nursery.cancel_scope.cancel()
    return found


async def _raw_actor(inbox: trio.MemoryReceiveChannel[object]) -> None:
    async for _ in inbox:
        pass


async def used_backends(count: int) -> Census:
    """Objects the service keeps per backend once the backend has run a job.

    A service's backends are fixed when it opens, so this compares two services, over `count`
    and over ``2 * count`` backends, each census taken while the service is open.
    """
    growth: list[dict[str, int]] = []
    tracked_by_type()
    for size in (count, 2 * count):
        backends = [LocalBackend(f"b{i}", qmux.BackendConfig(), job_seconds=0.0) for i in range(size)]
        await trio.testing.wait_all_tasks_blocked()
        before = tracked_by_type()
        # retain_finished=1: the finished jobs kept for lookup are counted in their own row
        async with qmux.open_service(backends, settings=attrs.evolve(_COUNTING, retain_finished=1)) as service:
            for backend in backends:
                job = await service.backend(backend.name).run("echo", 0)
                await job.result()
            del job
            await trio.testing.wait_all_tasks_blocked()
            after = tracked_by_type()
        del service, backends  # nothing of this service may be alive at the next one's first census
        growth.append({name: after.get(name, 0) - before.get(name, 0) for name in after.keys() | before.keys()})
    small, large = growth
    return _growth(small, large, count)


async def raw_workers(count: int) -> Census:
    """Baseline: one raw worker task per backend, blocked on its own memory channel."""
    return await raw_actors(count)


async def queued_in_session(count: int) -> Census:
    """Objects per job queued in a session behind one that runs (and never ends: the clock stands)."""
    backend = LocalBackend("busy", qmux.BackendConfig(concurrency=1), job_seconds=10.0)
    async with qmux.open_service([backend], settings=_COUNTING) as service:
        session = qmux.Session(service=service, backend="busy")
        held = [await session.run("echo", "runs")]

        async def add(n: int) -> None:
            held.extend([await session.run("echo", i) for i in range(n)])

        found = await per_item(add, count)
        await session.cancel()
    return found


async def running(count: int) -> Census:
    """Objects per running job: job mode on a backend with a slot for every job, 10 s each."""
    backend = LocalBackend("wide", qmux.BackendConfig(concurrency=4 * count), job_seconds=10.0)
    async with qmux.open_service([backend], settings=_COUNTING) as service:
        handle = service.backend("wide")
        held: list[qmux.Job] = []

        async def add(n: int) -> None:
            held.extend([await handle.run("echo", i) for i in range(n)])

        found = await per_item(add, count)
        if any([await job.status() != "RUNNING" for job in held]):
            raise AssertionError("a job that should be running is not")
        for job in held:
            await job.cancel()
    return found


async def queued_in_line(count: int) -> Census:
    """Objects per job-mode job waiting in a busy backend's line."""
    backend = LocalBackend("busy", qmux.BackendConfig(concurrency=1), job_seconds=10.0)
    async with qmux.open_service([backend], settings=_COUNTING) as service:
        handle = service.backend("busy")
        held = [await handle.run("echo", "runs")]

        async def add(n: int) -> None:
            held.extend([await handle.run("echo", i) for i in range(n)])

        found = await per_item(add, count)
        for job in held:
            await job.cancel()
    return found


async def finished_jobs(count: int) -> Census:
    """Objects per finished job the service keeps for lookup by id (``retain_finished``), handle dropped."""
    backend = LocalBackend("zero", qmux.BackendConfig(), job_seconds=0.0)
    async with qmux.open_service([backend], settings=attrs.evolve(_COUNTING, retain_finished=4 * count)) as service:
        handle = service.backend("zero")

        async def add(n: int) -> None:
            for i in range(n):
                job = await handle.run("echo", i)
                await job.result()

        found = await per_item(add, count)
    return found


async def raw_requests(count: int) -> Census:
    """Baseline: a request in flight in raw Trio, ``(payload, reply_channel)`` in the worker's channel."""
    send, receive = trio.open_memory_channel[tuple[int, trio.MemorySendChannel[int]]](math.inf)
    reply_send, _reply_receive = trio.open_memory_channel[int](1)

    async def add(n: int) -> None:
        for i in range(n):
            send.send_nowait((i, reply_send))

    found = await per_item(add, count)
    del receive
    return found


# -- the collector's work in a steady state -------------------------------------------------------


@dataclass
class CollectorWork:
    """What the cyclic collector did during a run: its passes and the objects each one scanned."""

    passes: int = 0
    full_passes: int = 0
    largest: int = 0
    scanned: int = 0
    frozen: int = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase != "start":
            return
        generation = info["generation"]
        size = sum(len(gc.get_objects(generation=g)) for g in range(generation + 1))
        self.passes += 1
        self.full_passes += generation == 2
        self.largest = max(self.largest, size)
        self.scanned += size


def collector_work(sessions: int, rounds: int, policy: str) -> CollectorWork:
    """The timers benchmark's load, in a steady state, on a mock clock: what the collector scans.

    `sessions` sessions, each on its own zero-work backend, all opened first; then `rounds`
    times, each session runs one job, the first jobs spread over 2 s, a round every 20 s (so that
    each session goes inactive after its ITTL and is activated again by its next job). Every
    collection is counted with the objects it scans (the generations it collects, sized when it
    starts). On ``trio.testing.MockClock(autojump_threshold=0)`` the interleaving is the same from
    run to run, so the figures are counts, not timings.
    """
    work = CollectorWork()

    async def main() -> None:
        backends = [
            LocalBackend(f"b{i}", qmux.BackendConfig(interactive_ttl=3.0 + 2.0 * i / sessions), job_seconds=0.0)
            for i in range(sessions)
        ]
        async with qmux.open_service(backends, settings=qmux.ServiceSettings(gc=policy)) as service:
            opened = [qmux.Session(service=service, backend=f"b{i}", max_time=3600.0) for i in range(sessions)]
            await trio.testing.wait_all_tasks_blocked()
            work.frozen = gc.get_freeze_count()
            gc.callbacks.append(work)
            try:
                start = trio.current_time()
                for round_ in range(rounds):
                    for index, session in enumerate(opened):
                        await trio.sleep_until(start + 20.0 * round_ + 2.0 * index / sessions)
                        await session.run("echo", index)
                await trio.sleep_until(start + 20.0 * rounds)
            finally:
                gc.callbacks.remove(work)
            for session in opened:
                await session.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return work


#: (label, qmux, baseline) of every row
MEASURES: tuple[tuple[str, Callable[[int], Awaitable[Census]], Callable[[int], Awaitable[Census]] | None], ...] = (
    ("per idle session", idle_sessions, raw_actors),
    ("per backend that has run a job", used_backends, raw_workers),
    ("per job queued in a session", queued_in_session, raw_requests),
    ("per job running", running, raw_requests),
    ("per job queued in job mode", queued_in_line, raw_requests),
    ("per finished job kept for lookup", finished_jobs, None),
)


def run(quick: bool = False) -> Result:
    configure_logging(logging.ERROR)  # stopping services with jobs running warns of each
    count = 200 if quick else 2_000
    result = Result(name="objects")
    breakdowns: dict[str, Any] = {}
    lines = []
    for label, ours, floor in MEASURES:
        mine = census(lambda ours=ours: ours(count))  # type: ignore[misc]
        base = census(lambda floor=floor: floor(count)) if floor is not None else None  # type: ignore[misc]
        result.rows.append(
            Row(
                measure=f"GC-tracked objects {label}",
                qmux=mine.per_item,
                unit="objects",
                baseline=base.per_item if base is not None else None,
                ratio=mine.per_item / base.per_item if base is not None and base.per_item else None,
                note="count, not time: lower is better",
            )
        )
        breakdowns[label] = {"qmux": mine.by_type, "baseline": base.by_type if base else None}
        lines.append(f"* {label}: {mine.per_item:g} = {mine.breakdown()}")
    sessions, rounds = (1_000, 3) if quick else (10_000, 7)
    work = {policy: collector_work(sessions, rounds, policy) for policy in ("default", "freeze")}
    freeze, default = work["freeze"], work["default"]
    where = f"{sessions:,} sessions, {rounds} rounds of jobs, mock clock"
    for measure, mine, floor in (
        (f"full collections ({where})", freeze.full_passes, default.full_passes),
        (f"objects scanned by the largest collection ({where})", freeze.largest, default.largest),
        (f"objects scanned by all collections ({where})", freeze.scanned, default.scanned),
    ):
        result.rows.append(
            Row(
                measure=measure,
                qmux=mine,
                unit="objects" if "objects" in measure else "",
                baseline=floor,
                ratio=mine / floor if floor else None,
                note='qmux: gc="freeze"; baseline: gc="default" (the default)',
            )
        )
    result.extra = {
        "notes": NOTES,
        "by_type": breakdowns,
        "count": count,
        "collector": {policy: vars(done) for policy, done in work.items()},
    }
    lines.append(
        f"\n**The collector's work.** {collector_work.__doc__.split(chr(10) + chr(10), 1)[1].strip()} "
        f'Sizes: {sessions:,} sessions, {rounds} rounds. With ``gc="freeze"`` (opt-in) '
        f"{freeze.frozen:,} objects were frozen at start-up; the baseline is the same run with "
        f'``gc="default"``. Passes: {freeze.passes:,} against {default.passes:,}.'
    )
    result.method = (
        (__doc__ or "").split("\n\n", 1)[1].strip()
        + f"\n\nN = {count:,}. Where each item's objects come from (per item, by type):\n\n"
        + "\n".join(lines)
    )
    return result
