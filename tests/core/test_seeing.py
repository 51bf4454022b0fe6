"""Seeing what runs: listing, events, usage, queue position and tags (SPEC V1, E1, U1, Q1, T1).

Each rule is checked on the mock clock through `service_factory`: in process, and over HTTP.
"""

from __future__ import annotations

import datetime as dt
import gc
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

import qmux
from qmux.testing import ServiceFactory, job, qpu

Clock = trio.testing.MockClock


async def _collect(iterator: Any, *, until: set[str] | None = None, limit: int = 100) -> list[Any]:
    events = []
    async for event in iterator:
        events.append(event)
        if (until is not None and event.kind in until) or len(events) >= limit:
            break
    return events


# -- V1: listing -----------------------------------------------------------------------------------


async def test_V1_sessions_and_jobs_are_listed_newest_first_with_filters(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a"), qpu("b")]) as service:
        first = qmux.Session(service=service, backend="a")
        await (await first.run("script", job(1), tags=["x"])).result()
        await first.close()
        await trio.sleep(5)
        second = qmux.Session(service=service, backend="b")
        running = await second.run("script", job(100), tags=["x", "y"])
        await trio.sleep(1)
        listed = [s.session_id async for s in service.sessions()]
        assert listed[:2] == [second.session_id, first.session_id], "newest first"
        assert [s.session_id async for s in service.sessions(backend="a")] == [first.session_id]
        assert [s.session_id async for s in service.sessions(state="closed")] == [first.session_id]
        assert [s.session_id async for s in service.sessions(limit=1)] == [second.session_id]
        middle = dt.datetime.now(dt.UTC)  # the wall clock follows the virtual one
        assert [j.job_id async for j in service.jobs(status="RUNNING")] == [running.job_id]
        assert [j.job_id async for j in service.jobs(tags=["x", "y"])] == [running.job_id]
        assert len([j async for j in service.jobs(tags=["x"])]) == 2
        assert [j.job_id async for j in service.jobs(session_id=second.session_id)] == [running.job_id]
        assert [j async for j in service.jobs(created_after=middle + dt.timedelta(days=1))] == []
        await running.cancel()
        await second.close()


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"state": "sleeping"}, "state='sleeping' is not a session state"),
        ({"created_after": dt.datetime(2026, 1, 1)}, "aware datetime"),
        ({"limit": 0}, "limit=0 must be a positive whole number"),
    ],
)
async def test_V1_bad_listing_filters_are_refused_clearly(
    autojump_clock: Clock, service_factory: ServiceFactory, filters: dict[str, Any], message: str
) -> None:
    async with service_factory([qpu("a")]) as service:
        with pytest.raises(qmux.InvalidInputError, match=message):
            [s async for s in service.sessions(**filters)]


# -- E1: events ------------------------------------------------------------------------------------


async def test_E1_a_sessions_stream_starts_with_its_state_and_ends_after_it_closed_and_its_jobs_ended(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a", interactive_ttl=10)]) as service:
        session = qmux.Session(service=service, backend="a")
        seen: list[Any] = []

        async def follow() -> None:
            seen.extend([event async for event in session.events()])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            await trio.sleep(0.1)
            first = await session.run("script", job(2))
            await first.result()
            await trio.sleep(15)  # the ITTL passes: deactivated (S9)
            await session.run("script", job(3))
            await session.close()
        kinds = [event.kind for event in seen]
        assert kinds[0] == "session.open"
        assert kinds[1:] == [
            "job.queued",
            "session.active",
            "job.running",
            "job.done",
            "session.inactive",
            "job.queued",
            "session.active",
            "job.running",
            "job.done",
            "session.closed",
        ] or kinds[1:] == [
            "job.queued",
            "session.active",
            "job.running",
            "job.done",
            "session.ittl_warning",
            "session.inactive",
            "job.queued",
            "session.active",
            "job.running",
            "job.done",
            "session.closed",
        ]
        reasons = {event.kind: event.data.get("reason") for event in seen if event.kind.startswith("session.")}
        assert reasons["session.inactive"] == "ittl_expired"
        assert reasons["session.closed"] == "closed"
        assert all(event.session_id == session.session_id for event in seen)
        assert [e.seq for e in seen[1:]] == sorted(e.seq for e in seen[1:])


async def test_E1_warnings_come_a_configured_lead_before_the_ittl_and_max_time(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    settings = qmux.ServiceSettings(ittl_warning=3, max_time_warning=20)
    async with service_factory([qpu("a", interactive_ttl=10)], settings) as service:
        session = qmux.Session(service=service, backend="a", max_time=60)
        warnings: list[tuple[str, float, float]] = []

        async def follow() -> None:
            async for event in session.events():
                if event.kind.endswith("_warning"):
                    warnings.append((event.kind, trio.current_time(), event.data["seconds_left"]))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            await trio.sleep(0.1)
            await (await session.run("script", job(1))).result()  # 0.1 - 1.1; ITTL ends at 11.1
            await trio.sleep(20)
            await (await session.run("script", job(30))).result()  # max_time ends at 60.1
            await trio.sleep(5)
            nursery.cancel_scope.cancel()
        assert warnings[0][0] == "session.ittl_warning"
        assert warnings[0][1] == pytest.approx(8.1, abs=0.01) and warnings[0][2] == pytest.approx(3, abs=0.01)
        assert ("session.max_time_warning", pytest.approx(40.1, abs=0.01), pytest.approx(20, abs=0.01)) in warnings
        await session.close()


async def test_E1_a_jobs_stream_ends_with_its_end_and_a_finished_jobs_is_its_end(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a")]) as service:
        submitted = await service.backend("a").run("script", job(2, fail="boom"))
        kinds = [event.kind async for event in submitted.events()]
        assert kinds[-1] == "job.error" and kinds[0] in ("job.queued", "job.running")
        again = [event async for event in submitted.events()]
        assert [event.kind for event in again] == ["job.error"]
        assert again[0].data["reason"] == "backend_error"


async def test_E1_service_events_follow_one_session_or_one_backend_from_now(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a"), qpu("b")]) as service:
        session = qmux.Session(service=service, backend="a")
        await session.status()
        # ``async with``: over HTTP, the block begins once the server listens
        async with service.events(session_id=session.session_id) as of_a, service.events(backend="b") as of_b:
            await (await session.run("script", job(1))).result()
            elsewhere = await service.backend("b").run("script", job(1))
            await elsewhere.result()
            await session.close()
            kinds = [event.kind async for event in of_a]  # it ends with the session
            on_b = await _collect(of_b, until={"job.done"})
        assert kinds == ["job.queued", "session.active", "job.running", "job.done", "session.closed"], (
            "from now: no state first, unlike session.events()"
        )
        assert [event.kind for event in on_b] == ["job.queued", "job.running", "job.done"], (
            "a job-mode job that starts at once is still seen queued first: every transition"
        )
        assert {event.job_id for event in on_b} == {elsewhere.job_id}
        assert {event.backend for event in on_b} == {"b"}


async def test_E1_a_slow_reader_never_slows_a_session_and_is_told_what_it_missed(autojump_clock: Clock) -> None:
    settings = qmux.ServiceSettings(event_buffer=5)
    async with qmux.open_service([qpu("a", concurrency=50)], settings=settings) as service:
        stream = service.events(backend="a")
        session = qmux.Session(service=service, backend="a")
        jobs = [await session.run("script", job(1)) for _ in range(20)]
        start = trio.current_time()
        for submitted in jobs:
            await submitted.result()
        assert trio.current_time() - start == pytest.approx(1.0), "nobody waited for the reader"
        first = await anext(stream)
        assert first.kind == "lagged" and first.data["missed"] > 0
        rest = await _collect(stream, limit=5)
        assert len(rest) == 5
        await session.close()


async def test_E1_subscribers_are_bounded_per_owner(autojump_clock: Clock) -> None:
    settings = qmux.ServiceSettings(max_subscribers_per_owner=2)
    async with qmux.open_service([qpu("a")], settings=settings) as service:
        kept = [service.events(owner="alice"), service.events(owner="alice")]
        with pytest.raises(qmux.CapacityError, match="2 event subscriptions"):
            service.events(owner="alice")
        service.events(owner="bob")  # another owner is not affected
        assert len(kept) == 2


async def test_E1_a_closed_stream_frees_its_slot_at_once_and_a_dropped_one_when_collected(
    autojump_clock: Clock,
) -> None:
    settings = qmux.ServiceSettings(max_subscribers_per_owner=2)
    async with qmux.open_service([qpu("a")], settings=settings) as service:
        session, other = qmux.Session(service=service, backend="a"), qmux.Session(service=service, backend="a")
        await session.status()
        hub = service.events_hub
        async with other.events():  # someone else listens all along
            gc.disable()  # nothing may depend on a collection: closing alone lets go
            try:
                stream = session.events()
                assert hub.watching(session.session_id)
                stream.close()
                assert not hub.watching(session.session_id), "closed: out of the session's index at once"
                assert hub.subscriber_count() == 1
                again = session.events()  # its slot is free again
            finally:
                gc.enable()
            del again  # dropped without closing (a loop left early): forgotten when collected
            gc.collect()
            assert hub.subscriber_count() == 1 and not hub.watching(session.session_id)
        await session.close()
        await other.close()


async def test_E1_one_task_reads_a_stream_at_a_time_and_a_cancelled_read_loses_no_event(
    autojump_clock: Clock,
) -> None:
    async with qmux.open_service([qpu("a")]) as service, trio.open_nursery() as nursery:
        session = qmux.Session(service=service, backend="a")
        stream = session.events()
        assert (await anext(stream)).kind == "session.open"
        reading = trio.CancelScope()

        async def read_one() -> None:
            with reading:
                await anext(stream)
            assert reading.cancelled_caught, "it was parked until cancelled"

        nursery.start_soon(read_one)  # parks: nothing has happened yet
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError, match="already reading"):
            await anext(stream)
        reading.cancel()  # the parked read is cancelled...
        await trio.testing.wait_all_tasks_blocked()
        await session.run("script", job(1))
        assert (await anext(stream)).kind == "job.queued", "...and the next read gets the next event"
        await session.close()
    assert not nursery.cancel_scope.cancelled_caught


async def test_E1_a_stream_resumed_after_a_restart_or_on_another_node_misses_nothing_the_new_hub_holds(
    autojump_clock: Clock,
) -> None:
    """An event id of an earlier hub (a server before its restart, a node a backend moved from)
    is not this hub's: the stream resumes with everything the new hub holds, none skipped."""
    async with qmux.open_service([qpu("a")]) as before:
        session = qmux.Session(service=before, backend="a")
        async with session.events() as stream:
            await (await session.run("script", job(1))).result()
            seen = await _collect(stream, until={"job.done"})
        await session.close()
    await trio.sleep(1)  # the next process starts later
    async with qmux.open_service([qpu("a")]) as after:
        assert after.events_hub.first_seq > seen[-1].seq, "a later hub numbers above an earlier one"
        listener = after.events(backend="a")  # someone listens: the new hub keeps a history
        again = qmux.Session(service=after, backend="a")
        await (await again.run("script", job(1))).result()
        resumed = after.events_hub.subscribe(backend="a", after=seen[-1].seq)
        resumed.end()
        kinds = [event.kind async for event in resumed]
        assert kinds[:3] == ["session.open", "job.queued", "session.active"], "from the start of what it holds"
        assert "job.done" in kinds and "lagged" not in kinds
        foreign = after.events_hub.subscribe(backend="a", after=after.events_hub.first_seq + 10**9)
        foreign.end()  # an id from a hub started later (another node) is not skipped past either
        assert [event.kind async for event in foreign] == kinds
        listener.close()
        await again.close()


# -- U1: usage -------------------------------------------------------------------------------------


async def test_U1_metrics_usage_and_service_usage(autojump_clock: Clock, service_factory: ServiceFactory) -> None:
    async with service_factory([qpu("a"), qpu("b", concurrency=2)]) as service:
        session = qmux.Session(service=service, backend="a")
        first = await session.run("script", job(3))
        second = await session.run("script", job(2))
        await second.result()
        metrics = await second.metrics()
        assert metrics["usage"]["quantum_seconds"] == pytest.approx(2)
        assert metrics["queue_seconds"] == pytest.approx(3), "it waited for the first job"
        assert metrics["attempts"] == 1
        assert set(metrics["timestamps"]) == {"created", "running", "finished"}
        await (await service.backend("b").run("script", job(4))).result()
        usage = await service.usage()
        assert usage["a"] == {"jobs": 2, "quantum_seconds": pytest.approx(5)}
        assert usage["b"] == {"jobs": 1, "quantum_seconds": pytest.approx(4)}
        assert await session.usage() == pytest.approx(9), "a dedicated session uses the wall clock while active (S18)"
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        assert await service.usage(since=later) == {}
        with pytest.raises(qmux.InvalidInputError, match=r"^until=.* must be an aware datetime"):
            await service.usage(until=dt.datetime(2026, 1, 1))
        await first.result()
        await session.close()


# -- Q1: queue position --------------------------------------------------------------------------


async def test_Q1_queue_position_counts_the_jobs_that_start_first(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("a")]) as service:
        session = qmux.Session(service=service, backend="a")
        running = await session.run("script", job(10))
        mine = [await session.run("script", job(1)) for _ in range(2)]
        outsider = await service.backend("a").run("script", job(1))
        await trio.sleep(1)
        assert await running.queue_position() is None, "running: no position"
        assert [await j.queue_position() for j in mine] == [0, 1]
        assert await outsider.queue_position() == 2, "after the active session's queued jobs (S7)"
        assert await service.backend("a").queue_info() == {"priority": 2, "normal": 1}
        await session.close()
        await outsider.result()
        assert await outsider.queue_position() is None


# -- T1: tags --------------------------------------------------------------------------------------


async def test_T1_tags_label_jobs_and_can_be_updated(autojump_clock: Clock, service_factory: ServiceFactory) -> None:
    async with service_factory([qpu("a")]) as service:
        tagged = await service.backend("a").run("script", job(1), tags=["exp-1", "calib"])
        assert await tagged.tags() == ["exp-1", "calib"]
        await tagged.update_tags(["exp-2"])
        assert await tagged.tags() == ["exp-2"]
        assert [j.job_id async for j in service.jobs(tags=["exp-2"])] == [tagged.job_id]
        assert [j async for j in service.jobs(tags=["exp-1"])] == []
        with pytest.raises(qmux.InvalidInputError, match="tags="):
            await tagged.update_tags("not-a-list")  # type: ignore[arg-type]
        await tagged.result()


async def test_E1_a_services_event_stream_ends_when_the_service_stops(autojump_clock: Clock) -> None:
    seen: list[str] = []
    async with trio.open_nursery() as nursery:
        async with qmux.open_service([qpu("a")]) as service:
            stream = service.events()

            async def follow() -> None:
                seen.extend([event.kind async for event in stream])

            nursery.start_soon(follow)
            await (await service.backend("a").run("script", job(1))).result()
        with trio.fail_after(5):  # the reader ends by itself: the nursery would hang otherwise
            await trio.lowlevel.checkpoint()
    assert "job.done" in seen
