"""The supervisor: crash containment, bounded queues, shutdown, many concurrent clients (J4)."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
import trio
import trio.testing

import qmux
from qmux._core import SessionActor
from qmux.testing import ServiceFactory, job, qpu

Clock = trio.testing.MockClock


def _actor(session: qmux.Session) -> SessionActor:
    port = session._port
    assert isinstance(port, SessionActor)
    return port


def _break(monkeypatch: pytest.MonkeyPatch, session: qmux.Session) -> None:
    """Make the session's actor (and only its) next state change raise, as a bug in it would."""
    actor, fire = _actor(session), SessionActor._fire

    def explode(self: SessionActor, *args: Any) -> None:
        if self is actor:
            raise RuntimeError("bug in the actor")
        fire(self, *args)

    monkeypatch.setattr(SessionActor, "_fire", explode)


async def test_J4_a_crashed_session_fails_its_own_waiters_and_no_one_elses(
    autojump_clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with qmux.open_service([qpu("a"), qpu("b")]) as service:
        doomed = qmux.Session(service=service, backend="a")
        healthy = qmux.Session(service=service, backend="b")
        running = await doomed.run("script", job(10))
        queued = await doomed.run("script", job(10))
        fine = await healthy.run("script", job(5, value="ok"))
        _break(monkeypatch, doomed)
        with structlog.testing.capture_logs() as logs, pytest.raises(qmux.SessionCrashedError, match="crashed"):
            await doomed.close()
        for victim in (running, queued):
            with pytest.raises(qmux.JobFailedError, match="crashed"):
                await victim.result()
            assert await victim.status() == "ERROR"
        assert await doomed.status() == "Closed"
        with pytest.raises(qmux.SessionCrashedError):
            await doomed.run("script", job(1))
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["session.crashed"]
        assert await fine.result() == "ok"
        assert await healthy.status() == "In progress, accepting new jobs"
        after = await service.backend("a").run("script", job(1, value="a works"))
        assert await after.result() == "a works"  # the crashed session let go of its backend


async def test_J4_leaving_the_service_drains_running_and_queued_session_jobs(autojump_clock: Clock) -> None:
    settings = qmux.ServiceSettings(shutdown_grace=100)
    async with qmux.open_service([qpu("a")], settings=settings) as service:
        session = qmux.Session(service=service, backend="a")
        jobs = [await session.run("script", job(10, value=i)) for i in range(3)]
    assert [await j.result() for j in jobs] == [0, 1, 2]
    assert trio.current_time() == pytest.approx(30)
    with pytest.raises(qmux.ServiceClosedError, match="shutting down"):
        qmux.Session(service=service, backend="a")


async def test_J4_after_the_grace_period_everything_left_is_failed_and_every_waiter_wakes(
    autojump_clock: Clock,
) -> None:
    settings = qmux.ServiceSettings(shutdown_grace=15)
    outcomes: list[str] = []

    async def wait(j: qmux.Job) -> None:
        try:
            await j.result()
            outcomes.append("done")
        except qmux.JobError as exc:
            outcomes.append(exc.reason or "")

    async with trio.open_nursery() as waiters, qmux.open_service([qpu("a"), qpu("b")], settings=settings) as service:
        session = qmux.Session(service=service, backend="a")
        for seconds in (10, 10, 10):
            waiters.start_soon(wait, await session.run("script", job(seconds)))
        for _ in range(2):
            waiters.start_soon(wait, await service.backend("b").run("script", job(10)))
    assert trio.current_time() == pytest.approx(15)
    assert sorted(outcomes) == sorted(["done", "service_shutdown", "service_shutdown", "done", "service_shutdown"])


async def test_J4_an_error_in_the_body_cancels_at_once_and_is_raised_unwrapped(autojump_clock: Clock) -> None:
    waiting: list[qmux.Job] = []
    with pytest.raises(KeyError, match="user bug"):
        async with qmux.open_service([qpu("a")]) as service:
            session = qmux.Session(service=service, backend="a")
            waiting.append(await session.run("script", job(100)))
            waiting.append(await session.run("script", job(100)))
            await trio.sleep(1)
            raise KeyError("user bug")
    assert trio.current_time() == pytest.approx(1)
    assert [await j.status() for j in waiting] == ["ERROR", "ERROR"]
    for j in waiting:
        with pytest.raises(qmux.JobFailedError, match="shut down"):
            await j.result()


async def test_bounded_session_queue_refuses_at_once_and_queues_nothing(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    settings = qmux.ServiceSettings(max_queued_jobs_per_session=2)
    async with service_factory([qpu("a")], settings) as service:
        session = qmux.Session(service=service, backend="a")
        await session.run("script", job(10))
        await trio.sleep(0.1)
        await session.run("script", job(1))
        await session.run("script", job(1))
        with pytest.raises(qmux.CapacityError, match="2 jobs queued, its limit"):
            await session.run("script", job(1))
        assert service.backend("a").pending_jobs == 2
        await session.cancel()


async def test_bounded_backend_line_and_open_sessions(autojump_clock: Clock, service_factory: ServiceFactory) -> None:
    settings = qmux.ServiceSettings(max_waiting_per_backend=2, max_open_sessions=1)
    async with service_factory([qpu("a")], settings) as service:
        for _ in range(3):  # one runs, two wait
            await service.backend("a").run("script", job(10))
        await trio.sleep(0.1)
        with pytest.raises(qmux.CapacityError, match="its limit"):
            await service.backend("a").run("script", job(1))
        only = qmux.Session(service=service, backend="a")
        with pytest.raises(qmux.CapacityError, match="sessions are open"):
            extra = qmux.Session(service=service, backend="a")  # refused here in process,
            await extra.status()  # and at the first await over HTTP (the server's limit)
        await only.close()


async def test_bounded_mailbox_refuses_callers_past_the_limit(autojump_clock: Clock) -> None:
    settings = qmux.ServiceSettings(max_mailbox=2)
    refused: list[qmux.CapacityError] = []
    answered: list[str] = []

    async def ask(session: qmux.Session) -> None:
        try:
            answered.append(await session.status())
        except qmux.CapacityError as exc:
            refused.append(exc)

    async with qmux.open_service([qpu("a")], settings=settings) as service:
        session = qmux.Session(service=service, backend="a")
        await trio.sleep(0.1)
        # A parked actor's caller is answered at once, in its own task; messages queue only while
        # the actor is awake. Mark it awake, as it is between a wake-up and its next wait:
        _actor(session)._waiting = None
        async with trio.open_nursery() as nursery:
            for _ in range(5):  # all five run before the actor does: two fit, three are refused
                nursery.start_soon(ask, session)
        await session.close()
    assert (len(answered), len(refused)) == (2, 3)
    assert "mailbox limit" in str(refused[0])


async def test_a_parked_actors_callers_are_answered_in_order_without_queueing(autojump_clock: Clock) -> None:
    settings = qmux.ServiceSettings(max_mailbox=1)
    async with qmux.open_service([qpu("a")], settings=settings) as service:
        session = qmux.Session(service=service, backend="a")
        await trio.sleep(0.1)
        statuses: list[str] = []
        async with trio.open_nursery() as nursery:
            for _ in range(20):  # far past the mailbox limit, yet none waits in the mailbox
                nursery.start_soon(lambda: _collect(session, statuses))
        assert statuses == ["Pending"] * 20
        await session.close()


async def _collect(session: qmux.Session, into: list[str]) -> None:
    into.append(await session.status())


@pytest.mark.parametrize(
    ("field", "value"),
    [("idle_open_timeout", 0), ("shutdown_grace", -1), ("max_mailbox", 0), ("max_queued_jobs_per_session", 1.5)],
)
def test_service_settings_refuse_bad_values(field: str, value: Any) -> None:
    with pytest.raises(qmux.InvalidInputError, match=field):
        qmux.ServiceSettings(**{field: value})


async def test_backend_names_must_be_unique(autojump_clock: Clock) -> None:
    with pytest.raises(qmux.InvalidInputError, match="two backends are named 'a'"):
        async with qmux.open_service([qpu("a"), qpu("a")]):
            pass  # pragma: no cover


async def test_J4_a_thousand_clients_on_fifty_sessions_and_five_backends(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    backends = [qpu(f"q{i}", interactive_ttl=2) for i in range(5)]
    results: dict[int, object] = {}
    async with service_factory(backends) as service:
        sessions = [qmux.Session(service=service, backend=f"q{i % 5}") for i in range(50)]

        async def client(n: int) -> None:
            submitted = await sessions[n % 50].run("script", job(0.01 * (1 + n % 3), value=n))
            results[n] = await submitted.result()

        with trio.fail_after(100_000):
            async with trio.open_nursery() as nursery:
                for n in range(1000):
                    nursery.start_soon(client, n)
        for session in sessions:
            await session.close()
        assert {await s.status() for s in sessions} == {"Closed"}
    assert results == {n: n for n in range(1000)}
    assert sum(len(b.executions) for b in backends) == 1000


async def test_finished_jobs_and_sessions_are_forgotten_past_the_retention_limit(autojump_clock: Clock) -> None:
    settings = qmux.ServiceSettings(retain_finished=5)
    async with qmux.open_service([qpu("a")], settings=settings) as service:
        jobs = [await service.backend("a").run("script", job(1)) for _ in range(12)]
        for j in jobs:
            await j.result()
        await service.backend("a").run("script", job(1))
        with pytest.raises(qmux.JobNotFoundError):
            await service.job(jobs[0].job_id)
        assert await (await service.job(jobs[-1].job_id)).status() == "DONE"
        sessions = [qmux.Session(service=service, backend="a") for _ in range(7)]
        for session in sessions:
            await session.close()
        await trio.sleep(1)
        with pytest.raises(qmux.SessionNotFoundError):
            await service.session(sessions[0].session_id)
        found = await service.session(sessions[-1].session_id)
        assert await found.status() == "Closed"


async def test_a_front_door_may_open_a_session_under_a_proposed_id(autojump_clock: Clock) -> None:
    async with qmux.open_service([qpu("a")]) as service:
        port = service.open_session_port("a", session_id="c" * 20)
        assert port.session_id == "c" * 20
        for bad in ("c" * 20, "short", "UPPER" * 5, "x" * 65, "bad id with spaces!!"):
            with pytest.raises(qmux.InvalidInputError, match="session_id="):
                service.open_session_port("a", session_id=bad)
        await port.close()


async def test_J4_a_crash_met_through_the_mailbox_fails_the_caller_and_the_session(
    autojump_clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with qmux.open_service([qpu("a")]) as service:
        doomed = qmux.Session(service=service, backend="a")
        queued = await doomed.run("script", job(10))
        await trio.sleep(1)
        _break(monkeypatch, doomed)
        _actor(doomed)._waiting = None  # as if awake: the call goes through the mailbox, not the caller's task
        with pytest.raises(qmux.SessionCrashedError, match="crashed"):
            await doomed.close()
        with pytest.raises(qmux.JobFailedError, match="crashed"):
            await queued.result()
        assert await doomed.status() == "Closed"


async def test_jobs_are_counted_per_owner_from_before_anyone_asked_until_they_end(autojump_clock: Clock) -> None:
    """The counts a front door bounds tenants by start right at the first question, however many
    jobs were submitted before it, and fall as jobs end (in sessions and in job mode)."""
    async with qmux.open_service([qpu("a"), qpu("b")]) as service:
        port = service.open_session_port("a", owner="t1")
        await port.submit("script", job(10))
        await port.submit("script", job(10))
        await service.submit_job("b", "script", job(5), owner="t1")
        await service.submit_job("b", "script", job(5), owner="t2")
        assert (service.unfinished_jobs_of("t1"), service.unfinished_jobs_of("t2")) == (3, 1)
        await service.submit_job("b", "script", job(5), owner="t2")  # counted as it comes, now
        assert service.unfinished_jobs_of("t2") == 2
        await trio.sleep(15.5)  # b ran its three jobs; a its first
        assert (service.unfinished_jobs_of("t1"), service.unfinished_jobs_of("t2")) == (1, 0)
        await trio.sleep(10)
        assert service.unfinished_jobs_of("t1") == 0 and service.unfinished_jobs_of(None) == 0
        await port.close()
