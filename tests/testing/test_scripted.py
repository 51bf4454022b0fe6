"""qmux.testing's scripted backends: jobs that take given times, fail, fail transiently, hang or
return given values, in order or by input; each behaviour checked in process and over HTTP."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
import trio.testing

import qmux
from qmux.testing import Execution, ScriptedBackend, ServiceFactory, TransientBackendError, job, qpu

Clock = trio.testing.MockClock


async def test_a_job_takes_its_seconds_and_returns_its_value_or_its_id(
    autojump_clock: Clock, qmux_service_factory: ServiceFactory
) -> None:
    backend = qpu("q")
    async with qmux_service_factory([backend]) as service, qmux.Session(service=service, backend="q") as session:
        valued = await session.run("x", job(3, value={"answer": 42}))
        assert await valued.result() == {"answer": 42}
        assert trio.current_time() == pytest.approx(3)
        plain = await session.run("x", job(2))
        assert await plain.result() == plain.job_id
    assert [(e.job_id, e.started, e.ended, e.outcome) for e in backend.executions] == [
        (valued.job_id, pytest.approx(0), pytest.approx(3), "done"),
        (plain.job_id, pytest.approx(3), pytest.approx(5), "done"),
    ]
    assert backend.executions[0].session_id == session.session_id
    assert backend.executions[0].program_id == "x"


async def test_a_failing_job_fails_alone_with_its_message(
    autojump_clock: Clock, qmux_service_factory: ServiceFactory
) -> None:
    backend = qpu("q")
    async with qmux_service_factory([backend]) as service, qmux.Session(service=service, backend="q") as session:
        failing = await session.run("x", job(1, fail="boom"))
        after = await session.run("x", job(1, value=7))
        with pytest.raises(qmux.JobFailedError, match=r"RuntimeError: boom"):
            await failing.result()
        assert await after.result() == 7  # SPEC J3: the session goes on
    assert [e.outcome for e in backend.executions] == ["failed", "done"]


async def test_a_transient_failure_raises_a_recognisable_error(
    autojump_clock: Clock, qmux_service_factory: ServiceFactory
) -> None:
    async with qmux_service_factory([qpu("q")]) as service:
        flaky = await service.backend("q").run("x", job(1, transient="try again"))
        with pytest.raises(qmux.JobFailedError, match=r"TransientBackendError: try again") as caught:
            await flaky.result()
    if isinstance(service, qmux.Service):  # in process the backend's own exception is the cause
        assert isinstance(caught.value.__cause__, TransientBackendError)
        assert str(caught.value.__cause__) == "try again"


async def test_a_hanging_job_runs_until_cancelled(autojump_clock: Clock, qmux_service_factory: ServiceFactory) -> None:
    backend = qpu("q")
    async with qmux_service_factory([backend]) as service:
        stuck = await service.backend("q").run("x", job(hang=True))
        forever = await service.backend("q").run("x", job(math.inf))
        await trio.sleep(10_000)
        assert await stuck.status() == "RUNNING"
        await stuck.cancel()
        with pytest.raises(qmux.JobCancelledError):
            await stuck.result()
        await trio.sleep(10_000)
        assert await forever.status() == "RUNNING"
        await forever.cancel()
        with pytest.raises(qmux.JobCancelledError):
            await forever.result()
    assert [(e.outcome, e.ended) for e in backend.executions] == [
        ("cancelled", pytest.approx(10_000)),
        ("cancelled", pytest.approx(20_000)),
    ]


async def test_a_hanging_job_is_stopped_by_the_backends_job_timeout(autojump_clock: Clock) -> None:
    backend = qpu("q", job_timeout=30)
    async with qmux.open_service([backend]) as service:
        stuck = await service.backend("q").run("x", job(hang=True))
        with pytest.raises(qmux.JobError):
            await stuck.result()
    assert backend.executions[0].outcome == "cancelled"
    assert backend.executions[0].ended == pytest.approx(30)


async def test_a_script_is_followed_in_order_whatever_the_inputs(
    autojump_clock: Clock, qmux_service_factory: ServiceFactory
) -> None:
    backend = qpu("q", script=[job(5, value="one"), job(1, fail="two"), job(transient="three")])
    async with qmux_service_factory([backend]) as service:
        handle = service.backend("q")
        jobs = [await handle.run("circuit", {"shots": 100}) for _ in range(4)]
        assert await jobs[0].result() == "one"
        with pytest.raises(qmux.JobFailedError, match="RuntimeError: two"):
            await jobs[1].result()
        with pytest.raises(qmux.JobFailedError, match="TransientBackendError: three"):
            await jobs[2].result()
        assert await jobs[3].result() == jobs[3].job_id  # past the script: the default, 1 s
        backend.script.append(job(2, value="appended"))
        assert await (await handle.run("circuit", None)).result() == "appended"
    assert [e.outcome for e in backend.executions] == ["done", "failed", "failed_transiently", "done", "done"]
    assert [e.ended - e.started for e in backend.executions] == pytest.approx([5, 1, 1, 1, 2])


async def test_inputs_that_describe_a_job_win_over_the_script(autojump_clock: Clock) -> None:
    backend = qpu("q", script=[job(value="scripted")])
    async with qmux.open_service([backend]) as service:
        handle = service.backend("q")
        assert await (await handle.run("x", job(value="by input"))).result() == "by input"
        assert await (await handle.run("x", {"unrelated": 1})).result() == "scripted"


async def test_by_input_maps_a_users_own_inputs_to_behaviours(
    autojump_clock: Clock, qmux_service_factory: ServiceFactory
) -> None:
    def by_shots(request: qmux.JobRequest) -> dict[str, Any] | None:
        shots = request.inputs["shots"]
        return job(fail="too many shots") if shots > 1000 else job(shots / 100, value=shots)

    backend = ScriptedBackend("q", qmux.BackendConfig(), by_input=by_shots)
    async with qmux_service_factory([backend]) as service:
        handle = service.backend("q")
        small, large = await handle.run("x", {"shots": 300}), await handle.run("x", {"shots": 5000})
        assert await small.result() == 300
        with pytest.raises(qmux.JobFailedError, match="too many shots"):
            await large.result()
    assert backend.executions[0].ended == pytest.approx(3)


async def test_the_default_behaviour_can_be_changed(autojump_clock: Clock) -> None:
    backend = ScriptedBackend("q", default=job(7, value="default"))
    async with qmux.open_service([backend]) as service:
        assert await (await service.backend("q").run("x", None)).result() == "default"
    assert backend.executions[0].ended == pytest.approx(7)


async def test_running_at_tells_what_ran_when(autojump_clock: Clock) -> None:
    backend = qpu("q", concurrency=2)
    async with qmux.open_service([backend]) as service:
        handle = service.backend("q")
        first, second = await handle.run("x", job(4)), await handle.run("x", job(2))
        await first.result()
        await second.result()
    assert {e.job_id for e in backend.running_at(1)} == {first.job_id, second.job_id}
    assert [e.job_id for e in backend.running_at(3)] == [first.job_id]
    assert backend.running_at(4) == []


def test_qpu_is_a_backend_with_short_test_limits_unless_told_otherwise() -> None:
    backend = qpu()
    assert isinstance(backend, qmux.Backend)
    assert (backend.name, backend.config.interactive_ttl, backend.config.max_ttl) == ("qpu", 10.0, 3600.0)
    assert backend.config.concurrency == 1
    other = qpu("other", interactive_ttl=2, concurrency=3)
    assert (other.config.interactive_ttl, other.config.concurrency, other.config.max_ttl) == (2, 3, 3600.0)


def test_job_writes_plain_json_descriptions() -> None:
    assert job() == {"seconds": 1.0}
    assert job(3, value=[1, 2]) == {"seconds": 3, "value": [1, 2]}
    assert job(0, value=0) == {"seconds": 0, "value": 0}
    assert job(fail="boom") == {"seconds": 1.0, "fail": "boom"}
    assert job(2, transient="flaky") == {"seconds": 2, "transient": "flaky"}
    assert job(hang=True) == {"seconds": 1.0, "hang": True}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seconds": -1}, r"seconds=-1: expected a number of seconds, 0 or more"),
        ({"seconds": math.nan}, r"seconds=nan"),
        ({"seconds": "3"}, r"seconds='3'"),
        ({"seconds": True}, r"seconds=True"),
        ({"fail": ""}, r"fail='': expected the error's message"),
        ({"transient": 3}, r"transient=3"),
        ({"hang": "yes"}, r"hang='yes': expected True or False"),
        ({"fail": "a", "value": 1}, r"says fail and value: a job ends one way only"),
        ({"hang": True, "transient": "t"}, r"says transient and hang"),
    ],
)
def test_a_contradictory_or_malformed_description_is_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(qmux.InvalidInputError, match=message):
        job(**kwargs)


def test_a_bad_script_entry_is_refused_at_construction_with_its_index() -> None:
    with pytest.raises(qmux.InvalidInputError, match=r"script\[1\]: scripted job seconds=-2"):
        qpu(script=[job(), {"seconds": -2}])
    with pytest.raises(qmux.InvalidInputError, match=r"seconds='x'"):
        ScriptedBackend("q", default={"seconds": "x"})


async def test_malformed_inputs_fail_that_job_with_a_clear_message(autojump_clock: Clock) -> None:
    backend = qpu("q")
    async with qmux.open_service([backend]) as service:
        bad = await service.backend("q").run("x", {"seconds": -5})
        with pytest.raises(qmux.JobFailedError, match=r"InvalidInputError: scripted job seconds=-5"):
            await bad.result()
    assert backend.executions == []


def test_an_execution_is_a_plain_record() -> None:
    record = Execution("j", None, 1.0)
    assert (record.ended, record.outcome, record.program_id) == (None, "running", "")
