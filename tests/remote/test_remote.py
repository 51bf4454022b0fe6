"""The remote client (`qmux.connect`): what HTTP changes, and how the API stays the same.

The session rules run through the client in the core suite (``service_factory``'s "remote");
here: connecting, the synchronous calls answered from the client's own view, background
session creation, error mapping, retries, and qiskit payloads end to end. In memory, through
httpx.ASGITransport, on the virtual clock.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import numpy as np
import pytest
import trio
import trio.testing
from qiskit import QuantumCircuit
from qiskit.primitives import BitArray, DataBin, PrimitiveResult, SamplerPubResult
from trio.abc import Clock

import qmux
from qmux import _wire
from qmux._remote import NodesFailed, OutcomeUnknown, RemoteService, RetryTransport
from qmux.backends import LocalBackend
from qmux.server import QmuxApp
from qmux.testing import ScriptedBackend, job, qpu

from ..support.remote import BASE_URL, OTHER_TOKEN, TOKEN, remote_service, served_app


@asynccontextmanager
async def two_ends(
    backends: list[Any] | None = None, **settings: Any
) -> AsyncIterator[tuple[qmux.Service, QmuxApp, RemoteService]]:
    """The local service, the app over it, and tenant a's remote service on it."""
    async with (
        served_app(backends or [qpu("q"), qpu("r")], qmux.ServiceSettings(**settings)) as (local, app),
        qmux.connect(BASE_URL, token=TOKEN, transport=httpx.ASGITransport(app=app)) as remote,
    ):
        yield local, app, remote


def connect_to(app: QmuxApp, token: str = TOKEN, **kwargs: Any) -> Any:
    return qmux.connect(BASE_URL, token=token, transport=httpx.ASGITransport(app=app), **kwargs)


# -- connecting -----------------------------------------------------------------------------------


async def test_connect_reads_the_backends_and_checks_the_token() -> None:
    async with two_ends() as (local, app, remote):
        assert [h.name for h in remote.backends()] == [h.name for h in local.backends()]
        assert remote.backend("q").config == local.backend("q").config
        assert remote.backend("q").service is remote
        with pytest.raises(qmux.AuthenticationError, match="Bearer"):
            async with connect_to(app, token="not-a-known-token"):
                pass


async def test_connect_needs_a_token_and_sane_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QMUX_TOKEN", raising=False)
    with pytest.raises(qmux.InvalidInputError, match="token"):
        async with qmux.connect(BASE_URL):
            pass
    with pytest.raises(qmux.InvalidInputError, match="long_poll"):
        async with qmux.connect(BASE_URL, token=TOKEN, long_poll=0):
            pass


async def test_an_unreachable_server_is_a_service_closed_error_after_retries(autojump_clock: Clock) -> None:
    attempts: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(qmux.ServiceClosedError, match="did not answer GET /backends"):
        async with qmux.connect(BASE_URL, token=TOKEN, transport=httpx.MockTransport(refuse), retries=2):
            pass
    assert len(attempts) == 3


async def test_handles_of_a_closed_connection_say_so() -> None:
    async with two_ends() as (_, _, remote):
        pass
    with pytest.raises(qmux.ServiceClosedError, match="closed"):
        qmux.Session(service=remote, backend="q")
    with pytest.raises(qmux.ServiceClosedError, match="closed"):
        await remote.backend("q").run("script", job(1))


# -- the synchronous calls, answered from the client's view ---------------------------------------


async def test_sync_refusals_read_the_same_as_in_process() -> None:
    """S1, S4: the same error types and words, locally and remotely, before any round trip."""
    backends = [qpu("q"), ScriptedBackend("down", qmux.BackendConfig(operational=False))]
    async with two_ends(backends) as (local, _, remote):
        for kwargs in (
            {"backend": "nope"},
            {"backend": "down"},
            {"backend": "q", "max_time": "2h"},
            {"backend": "q", "max_time": "soon"},
            {"backend": "q", "max_time": -1},
            {"backend": "q", "mode": "solo"},
        ):
            with pytest.raises(qmux.QmuxError) as here:
                qmux.Session(service=local, **kwargs)
            with pytest.raises(qmux.QmuxError) as there:
                qmux.Session(service=remote, **kwargs)
            assert type(there.value) is type(here.value) and str(there.value) == str(here.value)
        for call in (
            lambda s: s.backend(7),
            lambda s: s.least_busy(simulator="yes"),
            lambda s: s.least_busy(min_num_qubits=1000),
        ):
            with pytest.raises(qmux.QmuxError) as here:
                call(local)
            with pytest.raises(qmux.QmuxError) as there:
                call(remote)
            assert type(there.value) is type(here.value) and str(there.value) == str(here.value)


async def test_pending_jobs_and_least_busy_follow_every_answer(autojump_clock: Clock) -> None:
    async with two_ends([qpu("q"), qpu("r")]) as (_, _, remote):
        jobs = [await remote.backend("q").run("script", job(5)) for _ in range(3)]
        assert remote.backend("q").pending_jobs == 2  # one runs, two wait: the POST's answer said so
        assert remote.least_busy().name == "r"
        for each in jobs:
            await each.result()
        assert remote.backend("q").pending_jobs == 0
        await remote.refresh()
        assert remote.backend("q").pending_jobs == 0


# -- sessions: created in the background, errors at the first await -------------------------------


async def test_a_session_knows_its_id_at_once_and_exists_on_the_server_at_once(autojump_clock: Clock) -> None:
    async with two_ends() as (local, _, remote):
        session = qmux.Session(service=remote, backend="q", max_time="10m")
        assert len(session.session_id) == 20
        await trio.testing.wait_all_tasks_blocked()  # the background creation runs as soon as the caller waits
        there = await local.session(session.session_id)
        assert (await there.details())["max_time"] == 600
        await session.close()
        assert await there.status() == "Closed"


async def test_a_session_the_server_refuses_raises_at_its_first_await_and_closes_quietly() -> None:
    async with two_ends(max_open_sessions=1) as (_, _, remote):
        first = qmux.Session(service=remote, backend="q")
        with pytest.raises(qmux.CapacityError, match="sessions are open"):
            async with qmux.Session(service=remote, backend="q") as second:  # no error on leaving: nothing to close
                await second.run("script", job(1))
        with pytest.raises(qmux.CapacityError):
            await second.status()
        await first.close()


async def test_s19_an_idle_remote_session_closes_itself(autojump_clock: Clock) -> None:
    async with remote_service([qpu("q")], qmux.ServiceSettings(idle_open_timeout=60)) as remote:
        session = qmux.Session(service=remote, backend="q")
        await trio.sleep(61)
        assert await session.status() == "Closed"
        with pytest.raises(qmux.SessionClosedError) as refused:
            await session.run("script", job(1))
        assert refused.value.reason is qmux.ClosedReason.IDLE_AT_OPEN
        assert refused.value.session_id == session.session_id


async def test_sessions_and_jobs_by_id_from_another_connection(autojump_clock: Clock) -> None:
    async with two_ends() as (_, app, remote):
        async with qmux.Session(service=remote, backend="q") as session:
            submitted = await session.run("script", job(2, value="v"))
            async with connect_to(app) as again:
                same = await again.session(session.session_id)
                assert same.backend_name == "q" and await same.status() == await session.status()
                found = await again.job(submitted.job_id)
                assert (found.session_id, found.program_id, found.backend_name) == (session.session_id, "script", "q")
                assert await found.result() == "v"
            async with connect_to(app, token=OTHER_TOKEN) as stranger:  # two tenants cannot see each other
                with pytest.raises(qmux.SessionNotFoundError):
                    await stranger.session(session.session_id)
                with pytest.raises(qmux.JobNotFoundError):
                    await stranger.job(submitted.job_id)
        with pytest.raises(qmux.InvalidInputError):
            await remote.job("")


async def test_details_have_the_same_keys_and_values_as_in_process(autojump_clock: Clock) -> None:
    async with two_ends() as (local, _, remote), qmux.Session(service=remote, backend="q") as session:
        await (await session.run("script", job(2))).result()
        there = await (await local.session(session.session_id)).details()
        assert await session.details() == there


# -- errors and results ---------------------------------------------------------------------------


async def test_a_failed_job_raises_the_same_error_with_its_cause(autojump_clock: Clock) -> None:
    async with two_ends() as (_, _, remote):
        failing = await remote.backend("q").run("script", job(1, fail="boom"))
        with pytest.raises(qmux.JobFailedError, match="boom") as failure:
            await failing.result()
        assert failure.value.job_id == failing.job_id and failure.value.reason == "backend_error"
        assert isinstance(failure.value.__cause__, RuntimeError)
        assert await failing.status() == "ERROR"
        with pytest.raises(qmux.JobFailedError):  # the outcome is kept: asked again, the same answer
            await failing.result()


async def test_inputs_that_cannot_travel_are_refused_before_sending(autojump_clock: Clock) -> None:
    async with two_ends() as (local, _, remote):
        with pytest.raises(qmux.InvalidInputError, match="does not carry"):
            await remote.backend("q").run("script", {"f": object()})
        with pytest.raises(qmux.InvalidInputError, match="program_id"):
            await remote.backend("q").run("", job(1))
        with pytest.raises(qmux.InvalidInputError, match="options"):
            await remote.backend("q").run("script", job(1), options={1: 2})  # type: ignore[dict-item]
        assert local.backend("q").pending_jobs == 0


def sampler_program(request: qmux.JobRequest) -> PrimitiveResult[SamplerPubResult]:
    """A stand-in sampler: all-zero shots for each PUB's circuit, in qiskit's result classes."""
    results = []
    for circuit, _values, shots in request.inputs["pubs"]:
        assert isinstance(circuit, QuantumCircuit)
        bits = BitArray(np.zeros((shots or 16, 1), dtype=np.uint8), num_bits=circuit.num_clbits)
        results.append(SamplerPubResult(DataBin(meas=bits, shape=()), metadata={"shots": shots}))
    return PrimitiveResult(results, metadata={"version": 2})


async def test_qiskit_payloads_cross_the_wire_both_ways(autojump_clock: Clock) -> None:
    backend = LocalBackend("qpu", programs={"sampler": sampler_program, "echo": lambda r: r.inputs})
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.measure_all()
    async with two_ends([backend]) as (_, _, remote), qmux.Session(service=remote, backend="qpu") as session:
        echoed = await (await session.run("echo", {"c": circuit, "v": np.arange(4)})).result()
        assert echoed["c"] == circuit
        np.testing.assert_array_equal(echoed["v"], np.arange(4))
        result = await (await session.run("sampler", {"pubs": [[circuit, None, 8]], "version": 2})).result()
        assert result[0].data.meas.get_counts() == {"00": 8}
        assert result.metadata == {"version": 2}


async def test_qmux_sampler_runs_unchanged_on_a_remote_service(autojump_clock: Clock) -> None:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    from qmux.backends import default_backends

    async with (
        remote_service(default_backends()) as remote,
        qmux.Session(service=remote, backend=remote.least_busy()),
    ):
        result = await (await qmux.Sampler().run([(circuit,)], shots=64)).result()
    counts = result[0].data.meas.get_counts()
    assert sum(counts.values()) == 64 and set(counts) <= {"00", "11"}


# -- the retry transport --------------------------------------------------------------------------


#: scripted answers beyond a plain status: a 429 without Retry-After (a capacity refusal, not a
#: throttle), and 503s without it: the journal failed (storage), or refused before acting (service_closed)
SCRIPTED: dict[int, tuple[int, dict[str, Any], dict[str, str]]] = {
    4290: (429, {"ok": 429}, {}),
    5030: (503, {"error": {"code": "storage", "message": "m", "type": "StorageError"}}, {}),
    5031: (503, {"error": {"code": "service_closed", "message": "m", "type": "ServiceClosedError"}}, {}),
}


def scripted_transport(answers: list[int | type[Exception]], seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, int):
            if answer in SCRIPTED:
                status, body, headers = SCRIPTED[answer]
                return httpx.Response(status, json=body, headers=headers)
            throttled = answer in (429, 503)
            return httpx.Response(answer, json={"ok": answer}, headers={"retry-after": "2"} if throttled else {})
        raise answer("scripted", request=request)

    return httpx.MockTransport(handle)


@pytest.mark.parametrize(
    ("method", "extensions", "answers", "status", "tries"),
    [
        ("GET", {}, [503, 502, 200], 200, 3),
        ("GET", {}, [httpx.ConnectError, httpx.RemoteProtocolError, 200], 200, 3),
        ("DELETE", {}, [504, 204], 204, 2),
        ("GET", {}, [503, 503, 503, 503], 503, 4),
        ("GET", {}, [500, 200], 500, 1),
        ("GET", {}, [httpx.ReadTimeout, 200], NodesFailed, 1),  # one node: a timeout is not waited for twice
        ("POST", {}, [503, 201], 201, 2),  # 503 with Retry-After: refused before anything happened
        ("POST", {}, [5031, 201], 201, 2),  # service_closed: refused before anything happened
        ("POST", {}, [5030, 201], 503, 1),  # the journal failed: it may have been done in part
        ("POST", {}, [504, 201], 504, 1),
        ("PATCH", {}, [httpx.ConnectError, 204], 204, 2),  # no connection: nothing was sent
        ("POST", {}, [httpx.ConnectTimeout, 201], 201, 2),
        ("POST", {}, [httpx.ReadError, 201], OutcomeUnknown, 1),  # it may have been received
        ("POST", {}, [httpx.RemoteProtocolError, 201], OutcomeUnknown, 1),
        ("POST", {"qmux.idempotent": True}, [httpx.ReadError, 201], 201, 2),
        ("POST", {"qmux.idempotent": True}, [503, 201], 201, 2),
        ("POST", {}, [429, 201], 201, 2),  # throttled at the door, so nothing happened: sent again
        ("PATCH", {}, [429, 429, 429, 429], 429, 4),
        ("POST", {}, [4290, 201], 429, 1),  # a 429 without Retry-After (a capacity limit) is an answer
        ("GET", {}, [httpx.ConnectError] * 4, NodesFailed, 4),
    ],
)
async def test_retries_what_cannot_have_been_done_and_idempotent_requests(
    autojump_clock: Clock,
    method: str,
    extensions: dict[str, Any],
    answers: list[int | type[Exception]],
    status: int | type[Exception],
    tries: int,
) -> None:
    """The table of `qmux._remote._transport`, on one node: what is sent again, and what is not."""
    seen: list[httpx.Request] = []
    transport = RetryTransport(scripted_transport(answers, seen), retries=3)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        request = client.build_request(method, "/x", extensions=extensions)
        if isinstance(status, int):
            assert (await client.send(request)).status_code == status
        else:
            with pytest.raises(status):
                await client.send(request)
    assert len(seen) == tries


async def test_retry_after_is_honoured_and_backoff_is_capped(autojump_clock: Clock) -> None:
    seen: list[httpx.Request] = []
    transport = RetryTransport(scripted_transport([503, 200], seen), retries=3, max_backoff=5)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        start = trio.current_time()
        assert (await client.get("/x")).status_code == 200
        assert trio.current_time() - start == pytest.approx(2)


async def test_requests_are_bounded_by_timeouts(autojump_clock: Clock) -> None:
    """A server that never answers costs a bounded wait, then a clear error."""

    async def hang(request: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    transport: Callable[[httpx.Request], Any] = hang
    with trio.fail_after(60):
        with pytest.raises(qmux.ServiceClosedError):
            async with qmux.connect(BASE_URL, token=TOKEN, transport=_TimeoutTransport(transport, 5), retries=1):
                pass


class _TimeoutTransport(httpx.AsyncBaseTransport):
    """Applies the read timeout itself (MockTransport does not): what httpcore does on a socket."""

    def __init__(self, handler: Callable[[httpx.Request], Any], seconds: float) -> None:
        self._handler = handler
        self._seconds = seconds

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with trio.move_on_after(self._seconds):
            response: httpx.Response = await self._handler(request)
            return response
        raise httpx.ReadTimeout("no answer", request=request)


# -- session ids, TLS options ---------------------------------------------------------------------


async def test_two_tenants_drawing_the_same_seed_get_different_sessions(
    autojump_clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session's id is derived from the client's seed and its token: the same seed is no collision."""
    seed = "00112233445566778899"
    monkeypatch.setattr("qmux._remote._client.new_id", lambda: seed)
    async with served_app([qpu("q")]) as (local, app):
        transport = httpx.ASGITransport(app=app)
        async with (
            qmux.connect(BASE_URL, token=TOKEN, transport=transport) as alice,
            qmux.connect(BASE_URL, token=OTHER_TOKEN, transport=transport) as bob,
        ):
            sessions = [qmux.Session(service=service, backend="q") for service in (alice, bob)]
            ids = [session.session_id for session in sessions]
            digests = [_wire.token_digest(token) for token in (TOKEN, OTHER_TOKEN)]
            assert ids == [_wire.session_id_from_seed(digest, seed) for digest in digests]
            assert ids[0] != ids[1]
            for session in sessions:
                assert await session.status() == "Pending"  # both exist on the server
            assert local.stats()["open_sessions"] == 2


async def test_a_server_that_names_the_session_otherwise_is_an_error_at_the_first_await(autojump_clock: Clock) -> None:
    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/backends":
            device = {"name": "q", "queue_length": 0, "configuration": {"num_qubits": 5}}
            return httpx.Response(200, json={"devices": [device]})
        return httpx.Response(201, json={"id": "ffffffffffffffffffff"})

    async with qmux.connect(BASE_URL, token=TOKEN, transport=httpx.MockTransport(handle)) as remote:
        session = qmux.Session(service=remote, backend="q")
        with pytest.raises(qmux.QmuxError, match="under another id"):
            await session.status()


@pytest.mark.parametrize(
    ("verify", "words"),
    [
        (False, "certificates are always verified"),
        ("/nonexistent/ca.pem", "is not a readable PEM file of CA certificates"),
        (3, "must be True (the public CAs), the path of a PEM file"),
    ],
)
async def test_verify_takes_true_a_ca_file_or_a_context_and_nothing_else(verify: Any, words: str) -> None:
    with pytest.raises(qmux.InvalidInputError, match=re.escape(words)):
        async with qmux.connect("https://127.0.0.1:1", token=TOKEN, verify=verify):
            pass
