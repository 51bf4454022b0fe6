"""The tracked-object counter of ``bench/objects.py``: it counts what it claims to, exactly.

The benchmark reports GC-tracked objects per idle session, per backend and per job; these tests
check the counter on objects whose count is known, and on qmux's own items, where a few types
must appear exactly once per item. Counting needs no clock: nothing here times anything.
"""

from __future__ import annotations

import pytest

from bench import objects


def test_the_counter_counts_one_more_item_exactly() -> None:
    held: list[object] = []

    async def add(n: int) -> None:
        held.extend([{"inner": {1, 2}}] for _ in range(n))  # a list holding a dict holding a set

    async def measure() -> objects.Census:
        return await objects.per_item(add, 100)

    census = objects.census(measure)
    assert census.per_item == 3
    assert census.by_type == {"list": 1, "dict": 1, "set": 1}
    assert census.breakdown() == "dict 1, list 1, set 1"


def test_untracked_objects_are_not_counted() -> None:
    held: list[object] = []

    async def add(n: int) -> None:
        held.extend(f"a string {i}" for i in range(len(held), len(held) + n))  # strings: never tracked

    census = objects.census(lambda: objects.per_item(add, 100))
    assert census.per_item == 0


def test_an_idle_session_is_one_actor_one_task_one_handle() -> None:
    census = objects.census(lambda: objects.idle_sessions(100))
    for kind in ("qmux.SessionActor", "qmux.Session", "trio.Task"):
        assert census.by_type[kind] == 1, kind
    assert census.per_item == pytest.approx(sum(census.by_type.values()))
    raw = objects.census(lambda: objects.raw_actors(100))
    assert raw.by_type["trio.Task"] == 1 and raw.by_type["trio.MemoryReceiveChannel"] == 1


def test_queued_and_running_jobs_are_counted_with_their_records() -> None:
    queued = objects.census(lambda: objects.queued_in_session(50))
    running = objects.census(lambda: objects.running(50))
    for census in (queued, running):
        assert census.by_type["qmux.JobRecord"] == 1 and census.by_type["qmux.Job"] == 1
    assert running.by_type["trio.Task"] == 1  # each running job holds an executor task
    assert "trio.Task" not in queued.by_type


def test_the_collector_work_counts_full_passes_and_what_they_scan() -> None:
    default = objects.collector_work(200, 2, "default")
    assert default.passes > 0 and default.scanned >= default.largest > 0
    assert default.frozen == 0
