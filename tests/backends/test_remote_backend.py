"""A backend that is another qmux server, and the network faults it must survive (fault matrix).

The remote server is the HTTP app over a local service, reached in memory through
``httpx.ASGITransport`` wrapped in a transport that injects faults: 500 and 503 answers and
connection resets. Each fault fails the one job it hits, or is retried away when the call is
idempotent (SPEC J3, J4); nothing hangs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trio
import trio.testing

import qmux
from qmux.backends import RemoteBackend
from qmux.testing import ScriptedBackend, job, qpu

from ..support.remote import BASE_URL, TENANTS, TOKEN

Clock = trio.testing.MockClock


class FaultyTransport(httpx.AsyncBaseTransport):
    """Answers the next requests matching (method, path prefix) with the planned faults, in order."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.plan: list[tuple[str, str, int | type[httpx.TransportError]]] = []
        self.seen: list[tuple[str, str, int]] = []

    def fail(self, method: str, prefix: str, fault: int | type[httpx.TransportError], times: int = 1) -> None:
        self.plan.extend([(method, prefix, fault)] * times)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for index, (method, prefix, fault) in enumerate(self.plan):
            if request.method == method and request.url.path.startswith(prefix):
                del self.plan[index]
                if isinstance(fault, int):
                    self.seen.append((request.method, request.url.path, fault))
                    return httpx.Response(fault, json={"error": {"code": fault, "message": "injected fault"}})
                self.seen.append((request.method, request.url.path, 0))
                raise fault("injected connection reset", request=request)
        return await self.inner.handle_async_request(request)


@asynccontextmanager
async def remote_pair(backend: ScriptedBackend) -> AsyncIterator[tuple[qmux.Service, FaultyTransport]]:
    """A remote server serving `backend`, and a local service whose backend "front" runs on it."""
    from qmux.server import create_app

    async with qmux.open_service([backend]) as remote:
        faults = FaultyTransport(httpx.ASGITransport(app=create_app(remote, TENANTS)))
        front = RemoteBackend("front", BASE_URL, token=TOKEN, remote_name=backend.name, transport=faults)
        async with qmux.open_service([front]) as local:
            yield local, faults


async def test_jobs_run_on_the_remote_server_under_local_session_rules(autojump_clock: Clock) -> None:
    far = qpu("far", interactive_ttl=7)
    async with remote_pair(far) as (service, _):
        assert service.backend("front").config.interactive_ttl == 7  # the remote backend's own config
        async with qmux.Session(service=service, backend="front") as session:
            jobs = [await session.run("script", job(2, value=i)) for i in range(3)]
            assert [await j.result() for j in jobs] == [0, 1, 2]
        assert len(far.executions) == 3
        assert {e.session_id for e in far.executions} == {None}  # job mode over there


async def test_J2_cancelling_a_job_here_cancels_it_there(autojump_clock: Clock) -> None:
    far = qpu("far")
    async with remote_pair(far) as (service, _):
        running = await service.backend("front").run("script", job(1000))
        await trio.sleep(5)
        await running.cancel()
        with pytest.raises(qmux.JobCancelledError):
            await running.result()
        await trio.sleep(1)
        assert far.executions[0].outcome == "cancelled"


async def test_J3_a_503_or_a_reset_on_an_idempotent_call_is_retried_away(autojump_clock: Clock) -> None:
    async with remote_pair(qpu("far")) as (service, faults):
        faults.fail("GET", "/jobs/", 503, times=2)
        faults.fail("GET", "/jobs/", httpx.ReadError)
        done = await service.backend("front").run("script", job(1, value="through"))
        assert await done.result() == "through"
        assert [fault for _, _, fault in faults.seen] == [503, 503, 0]


@pytest.mark.parametrize("fault", [500, 503, httpx.ConnectError])
async def test_J3_a_failed_submission_fails_that_job_only(
    autojump_clock: Clock, fault: int | type[httpx.TransportError]
) -> None:
    far = qpu("far")
    async with remote_pair(far) as (service, faults), qmux.Session(service=service, backend="front") as session:
        faults.fail("POST", "/jobs", fault, times=10)  # past every retry a submission may get
        doomed = await session.run("script", job(1))
        with pytest.raises(qmux.JobFailedError, match="failed on backend 'front'") as failed:
            await doomed.result()
        assert failed.value.reason == "backend_error"
        assert isinstance(failed.value.__cause__, qmux.QmuxError)
        faults.plan.clear()
        fine = await session.run("script", job(1, value="fine"))
        assert await fine.result() == "fine"
        assert await session.status() == "In progress, accepting new jobs"


async def test_J4_a_client_that_stops_waiting_leaves_the_job_and_the_server_well(autojump_clock: Clock) -> None:
    from qmux.server import create_app

    far = qpu("far")
    async with qmux.open_service([far]) as remote:
        app = create_app(remote, TENANTS)
        async with qmux.connect(BASE_URL, token=TOKEN, transport=httpx.ASGITransport(app=app)) as client:
            submitted = await client.backend("far").run("script", job(60, value="still here"))
            with trio.move_on_after(5):  # the client goes away mid long-poll
                await submitted.result()
        assert app.api._long_polls == set()  # no server task is left waiting for it
        async with qmux.connect(BASE_URL, token=TOKEN, transport=httpx.ASGITransport(app=app)) as again:
            found = await again.job(submitted.job_id)
            assert await found.result() == "still here"
            assert trio.current_time() == pytest.approx(60)
