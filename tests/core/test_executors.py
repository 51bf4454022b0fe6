"""The executor pool keeps nothing alive that the service has let go of.

A backend's executor tasks outlive the jobs they run. What one holds while it waits for the next
job (a finished job, its result, the session that ran it) stays in memory and in every scan of
the garbage collector for as long as the backend is idle; and a reference cycle among what it
leaves behind is freed only by the cyclic collector. These tests drop every reference the service
and the test hold, with the collector disabled: what is still alive then is held by something.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
import trio

import qmux
from qmux._core import JobRecord
from qmux.backends import LocalBackend

Clock = trio.testing.MockClock


def fail(request: qmux.JobRequest) -> object:
    raise RuntimeError(f"the device refused {request.inputs!r}")


@pytest.fixture
def collector_off() -> Iterator[None]:
    """Only reference counting frees objects while the test runs."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def finished(service: qmux.Service, backend: str, program: str) -> weakref.ref[object]:
    """Run one job on `backend` to its end; a weak reference to the service's record of it."""
    job = await service.backend(backend).run(program, "x")
    record = job._port
    assert isinstance(record, JobRecord)
    await record.wait()  # its end, whatever it is (`result()` would raise a failure)
    return weakref.ref(record)


@pytest.mark.parametrize("program", ["echo", "fail"])
async def test_a_finished_job_is_freed_once_the_service_forgets_it(
    autojump_clock: Clock, collector_off: None, program: str
) -> None:
    """Neither the idle executor that ran it, nor its error's traceback, keeps it alive (J3)."""
    backends = [
        LocalBackend(name, job_seconds=1.0, programs={"echo": lambda r: r.inputs, "fail": fail}) for name in "ab"
    ]
    settings = qmux.ServiceSettings(retain_finished=1, gc="default")
    async with qmux.open_service(backends, settings=settings) as service:
        first = await finished(service, "a", program)  # backend a's executor now waits, idle
        await finished(service, "b", "echo")  # retention keeps one job: the first is forgotten
        await trio.testing.wait_all_tasks_blocked()
        assert first() is None


async def test_a_closed_session_is_freed_although_the_executor_that_ran_its_job_waits(
    autojump_clock: Clock, collector_off: None
) -> None:
    backend = LocalBackend("a", qmux.BackendConfig(interactive_ttl=1.0), job_seconds=1.0)
    settings = qmux.ServiceSettings(retain_finished=1, gc="default")
    async with qmux.open_service([backend], settings=settings) as service:
        async with qmux.Session(service=service, backend="a") as session:
            await (await session.run("echo", "x")).result()
        actor = weakref.ref(session._port)
        del session
        async with qmux.Session(service=service, backend="a"):  # the first session is forgotten (retention 1)
            pass
        await finished(service, "a", "echo")  # and so is its job, whose canceller is the session's
        await trio.testing.wait_all_tasks_blocked()
        assert actor() is None


async def test_a_failed_job_leaves_no_reference_cycle(autojump_clock: Clock, collector_off: None) -> None:
    """Its error keeps the backend's traceback as its cause (J3), but not the executor's frame."""
    backend = LocalBackend("a", job_seconds=1.0, programs={"echo": lambda r: r.inputs, "fail": fail})
    settings = qmux.ServiceSettings(retain_finished=1, gc="default")
    async with qmux.open_service([backend], settings=settings) as service:
        record = (await service.backend("a").run("fail", "x"))._port
        assert isinstance(record, JobRecord)
        await record.wait()
        error = record.error
        assert error is not None and isinstance(error.__cause__, RuntimeError)
        assert error.__cause__.__traceback__ is not None  # the backend's frames are kept for whoever debugs it
        failed = weakref.ref(record)
        del record, error
        await finished(service, "a", "echo")  # the same executor moves on; retention forgets the failed job
        await trio.testing.wait_all_tasks_blocked()
        assert failed() is None


async def test_a_failed_job_whose_error_was_raised_to_its_caller_leaves_no_reference_cycle(
    autojump_clock: Clock, collector_off: None
) -> None:
    """`result()` raises a copy of the job's error: the copy's traceback holds the frames that
    reached it (the job among their locals), and the job must not hold the copy (J3)."""
    backend = LocalBackend("a", job_seconds=1.0, programs={"echo": lambda r: r.inputs, "fail": fail})
    settings = qmux.ServiceSettings(retain_finished=1, gc="default")
    async with qmux.open_service([backend], settings=settings) as service:
        job = await service.backend("a").run("fail", "x")
        for _ in range(2):  # each caller gets the same error, the backend's as its cause
            with pytest.raises(qmux.JobFailedError, match="refused 'x'") as raised:
                await job.result()
            assert raised.value.reason == "backend_error" and isinstance(raised.value.__cause__, RuntimeError)
        failed = weakref.ref(job._port)
        del job, raised
        await finished(service, "a", "echo")  # retention forgets the failed job
        await trio.testing.wait_all_tasks_blocked()
        assert failed() is None
