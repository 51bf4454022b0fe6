"""IBM's Runtime API spoken raw, in memory: auth, shapes, states, refusals, encodings, polling cost.

Requests go to the combined ASGI app (`qmux.ibm.mount_ibm`) through ``httpx.ASGITransport``,
so time-dependent tests run on the virtual clock. What the client does with these answers is
tests/system/test_ibm_client.py's subject; this module checks what the front door itself decides:
which status and shape each case gets, and that it translates the core without re-deciding.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import sys
import time
import zlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
import numpy as np
import pytest
import trio
from qiskit import QuantumCircuit
from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager
from qiskit_ibm_runtime import RuntimeDecoder, RuntimeEncoder
from qiskit_ibm_runtime.exceptions import IBMInputValueError
from qiskit_ibm_runtime.utils.backend_converter import convert_to_target
from qiskit_ibm_runtime.utils.backend_decoder import configuration_from_server_data, properties_from_server_data
from qiskit_ibm_runtime.utils.validations import validate_isa_circuits
from trio.abc import Clock

import qmux
from qmux._cli._main import main as cli_main
from qmux._core import wall_now
from qmux.backends import LocalBackend
from qmux.ibm import CompatApp, IamTokens, client_environment, export_lines, mount_ibm
from qmux.ibm._jobs import JobEntry, JobIndex
from qmux.server import ServerSettings, create_app
from qmux.testing import job, qpu

from ..support.remote import BASE_URL, OTHER_TOKEN, TENANTS, TOKEN

API = "/experimental"
UNKNOWN_ID = "0123456789abcdef0123"


@asynccontextmanager
async def ibm(
    backends: Sequence[qmux.Backend] | None = None, server: ServerSettings | None = None, **service: Any
) -> AsyncIterator[tuple[qmux.Service, CompatApp]]:
    """A service (scripted QPU "q", 2-job-slot simulator "sim" unless told otherwise) and the combined app."""
    if backends is None:
        backends = [qpu("q"), qpu("sim", simulator=True, concurrency=2)]
    async with qmux.open_service(backends, settings=qmux.ServiceSettings(**service)) as local:
        yield local, mount_ibm(create_app(local, TENANTS, server), local, TENANTS)


def client(app: CompatApp, authorization: str | None = f"Bearer {TOKEN}") -> httpx.AsyncClient:
    headers = {"authorization": authorization} if authorization is not None else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=headers)


def error_of(response: httpx.Response) -> dict[str, Any]:
    """IBM's error shape, which the client reads ``message`` and ``code`` from."""
    detail: dict[str, Any] = response.json()["error"]
    assert detail["message"] and detail["code"]
    assert response.headers["uber-trace-id"]  # without it the client appends the raw body to its message
    return detail


async def token_for(http: httpx.AsyncClient, apikey: str) -> httpx.Response:
    return await http.post(
        "/identity/token",
        data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": apikey},
        headers={"accept": "application/json"},
    )


async def open_session(http: httpx.AsyncClient, backend: str = "q", **body: Any) -> str:
    response = await http.post(f"{API}/sessions", json={"backend": backend, "mode": "dedicated", **body})
    assert response.status_code == 200, response.text
    session_id: str = response.json()["id"]
    return session_id


async def submit(http: httpx.AsyncClient, params: Any, **body: Any) -> str:
    payload = json.dumps({"program_id": "script", "params": params, **body}, cls=RuntimeEncoder)
    response = await http.post(f"{API}/jobs", content=payload, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert set(response.json()) >= {"id", "backend"}
    job_id: str = response.json()["id"]
    return job_id


async def state_of(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await http.get(f"{API}/jobs/{job_id}", params={"exclude_params": "true"})
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()["state"]
    return state


async def ended(local: qmux.Service, job_id: str) -> None:
    """Wait (10 s at most) for a job to end, through the core's own waiter."""
    with trio.fail_after(10), contextlib.suppress(qmux.JobError):
        await (await local.job(job_id)).result()


def bell(measured: bool = True) -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    if measured:
        circuit.measure_all()
    return circuit


# -- IAM ------------------------------------------------------------------------------------------


async def test_a_tenant_token_trades_for_a_jwt_the_client_can_read() -> None:
    async with ibm() as (_, app), client(app, authorization=None) as http:
        response = await token_for(http, TOKEN)
        assert response.status_code == 200, response.text
        body = response.json()
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})  # as ibm_cloud_sdk_core does
        assert claims["sub"] == "a" and claims["exp"] - claims["iat"] == 3600 == body["expires_in"]
        assert body["token_type"] == "Bearer" and body["expiration"] == claims["exp"]
        listed = await http.get(f"{API}/backends", headers={"authorization": f"Bearer {body['access_token']}"})
        assert listed.status_code == 200
        assert {d["name"] for d in listed.json()["devices"]} == {"q", "sim"}

        refused = await token_for(http, "not-a-tenant-token")
        assert refused.status_code == 400
        assert refused.json()["errorMessage"] == "the API key is not the token of any tenant of this qmux server"
        wrong_grant = await http.post("/identity/token", data={"grant_type": "password", "apikey": TOKEN})
        assert wrong_grant.status_code == 400 and "grant_type" in wrong_grant.json()["errorMessage"]


def test_access_tokens_cannot_be_forged_reused_elsewhere_or_used_after_expiry() -> None:
    now = [1_000_000.0]
    tokens = IamTokens(TENANTS, lifetime=60, now=lambda: now[0])
    issued = tokens.issue(TOKEN)
    assert issued is not None and issued.expires_at == 1_000_060
    assert tokens.tenant(f"Bearer {issued.token}") == "a"
    assert tokens.tenant(f"bearer {issued.token}") == "a"
    header, claims, signature = issued.token.split(".")
    forged_claims = base64.urlsafe_b64encode(
        json.dumps({"iss": "qmux", "sub": "b", "iat": 1, "exp": 2_000_000_000}).encode()
    ).rstrip(b"=")
    assert tokens.tenant(f"Bearer {header}.{forged_claims.decode()}.{signature}") is None
    assert tokens.tenant(f"Bearer {header}.{claims}.{signature[:-2]}AA") is None
    assert tokens.tenant("Bearer a.b.c") is None
    assert IamTokens(TENANTS, now=lambda: now[0]).tenant(f"Bearer {issued.token}") is None  # another server's key
    now[0] += 60
    assert tokens.tenant(f"Bearer {issued.token}") is None  # expired
    # a tenant's own token works as it does on the native API, and as the client's "apikey" fallback
    assert tokens.tenant(f"Bearer {OTHER_TOKEN}") == "b"
    assert tokens.tenant(f"apikey {OTHER_TOKEN}") == "b"
    assert tokens.tenant(f"Basic {OTHER_TOKEN}") is None
    assert tokens.tenant(None) is None
    assert tokens.issue("not-a-tenant-token") is None


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Bearer x.y.z", f"Basic {TOKEN}"])
async def test_calls_without_a_valid_token_answer_401_and_change_nothing(authorization: str | None) -> None:
    async with ibm() as (local, app), client(app, authorization) as http:
        for method, path, body in [
            ("GET", f"{API}/backends", None),
            ("POST", f"{API}/sessions", {"backend": "q"}),
            ("POST", f"{API}/jobs", {"program_id": "script", "backend": "q"}),
            ("GET", f"{API}/jobs/{UNKNOWN_ID}", None),
        ]:
            response = await http.request(method, path, json=body)
            assert response.status_code == 401, (method, path)
            assert error_of(response)["code"] == "unauthorized"
        assert local.backend("q").pending_jobs == 0
        assert local.stats() == {"open_sessions": 0, "finished_sessions": 0, "jobs": 0}


# -- backends -------------------------------------------------------------------------------------


async def test_backend_documents_pass_the_clients_own_readers_and_isa_check() -> None:
    async with ibm([qpu("q", num_qubits=127), qpu("sim", simulator=True)]) as (_, app), client(app) as http:
        devices = (await http.get(f"{API}/backends")).json()["devices"]
        assert devices[0] == {
            "name": "q",
            "status": {"name": "online"},
            "queue_length": 0,
            "qubits": 127,
            "physical_qubits": 127,
            "class": "qpu",
        }
        assert devices[1]["class"] == "simulator"
        status = (await http.get(f"{API}/backends/q/status")).json()
        assert status["state"] is True and status["status"] == "active" and status["length_queue"] == 0
        properties = properties_from_server_data((await http.get(f"{API}/backends/q/properties")).json())
        assert len(properties.qubits) == 127
        usage = (await http.get(f"{API}/instances/usage")).json()
        assert (usage["usage_consumed_seconds"], usage["usage_limit_reached"]) == (0, False), "nothing ran, no limit"
        missing = await http.get(f"{API}/backends/nope/configuration")
        assert missing.status_code == 404 and "no backend named 'nope'" in error_of(missing)["message"]

        raw = (await http.get(f"{API}/backends/q/configuration")).json()
        assert raw["simulator"] is False and (await http.get(f"{API}/backends/sim/configuration")).json()["simulator"]
        assert raw["max_ttl"] == 3600.0 and raw["interactive_ttl"] == 10.0
        assert len(raw["coupling_map"]) == 127 * 126  # all-to-all
        configuration = configuration_from_server_data(raw)  # the client's own decoder
        assert configuration is not None and configuration.n_qubits == 127
        target = convert_to_target(configuration, properties)
        validate_isa_circuits([bell()], target)  # an untranspiled Bell circuit is ISA, on any qubits
        far = QuantumCircuit(127)
        far.h(0)
        far.cx(0, 126)
        far.measure_all()
        validate_isa_circuits([far], target)
        rotated = QuantumCircuit(1)
        rotated.ry(0.3, 0)  # a fractional gate: the client drops those unless asked for them
        with pytest.raises(IBMInputValueError):
            validate_isa_circuits([rotated], target)
        transpiled = generate_preset_pass_manager(target=target, optimization_level=1).run(rotated)
        validate_isa_circuits([transpiled], target)  # what the README tells users to do


# -- sessions and tenancy -------------------------------------------------------------------------


async def test_sessions_follow_the_core_and_are_shared_with_the_native_api(autojump_clock: Clock) -> None:
    """SPEC S4, S12, S13, S17, S18 through IBM's routes; tenancy shared with the native API."""
    async with ibm() as (local, app), client(app) as http, client(app, f"Bearer {OTHER_TOKEN}") as other:
        too_long = await http.post(f"{API}/sessions", json={"backend": "q", "max_ttl": 7200})
        assert too_long.status_code == 422 and "max_ttl of backend 'q'" in error_of(too_long)["message"]
        unknown = await http.post(f"{API}/sessions", json={"backend": "nope"})
        assert unknown.status_code == 404

        session_id = await open_session(http, max_ttl=600, instance="crn:anything")
        document = (await http.get(f"{API}/sessions/{session_id}")).json()
        assert (document["state"], document["accepting_jobs"], document["max_ttl"]) == ("open", True, 600.0)
        assert document["interactive_ttl"] == 10.0 and document["mode"] == "dedicated"
        assert local.session_owner(session_id) == "a"  # the core's owner tag: kept by the journal

        native = await http.get(f"/sessions/{session_id}")  # the same session through the native API
        assert native.status_code == 200 and native.json()["id"] == session_id
        for path in (f"{API}/sessions/{session_id}", f"/sessions/{session_id}"):
            assert (await other.get(path)).status_code == 404
        assert (await other.patch(f"{API}/sessions/{session_id}", json={"accepting_jobs": False})).status_code == 404

        reopen = await http.patch(f"{API}/sessions/{session_id}", json={"accepting_jobs": True})
        assert reopen.status_code == 422
        await submit(http, job(10), session_id=session_id, backend="q")
        assert (await http.patch(f"{API}/sessions/{session_id}", json={"accepting_jobs": False})).status_code == 204
        closing = (await http.get(f"{API}/sessions/{session_id}")).json()
        assert (closing["state"], closing["accepting_jobs"]) == ("active", False)
        assert (await http.delete(f"{API}/sessions/{session_id}/close")).status_code == 204
        assert (await http.delete(f"{API}/sessions/{session_id}/close")).status_code == 204  # S16
        assert (await http.get(f"{API}/sessions/{session_id}")).json()["state"] == "closed"

        batch = (await http.post(f"{API}/sessions", json={"backend": "q", "mode": "batch"})).json()
        assert batch["mode"] == "batch"


async def test_a_job_for_a_closed_or_unknown_session_is_refused_without_a_404(autojump_clock: Clock) -> None:
    """SPEC S15: 409 for a closed session; not 404, which the client reads as "program not found"."""
    async with ibm() as (local, app), client(app) as http, client(app, f"Bearer {OTHER_TOKEN}") as other:
        session_id = await open_session(http)
        await http.patch(f"{API}/sessions/{session_id}", json={"accepting_jobs": False})
        closed = await http.post(
            f"{API}/jobs", json={"program_id": "script", "params": job(), "session_id": session_id, "backend": "q"}
        )
        assert closed.status_code == 409
        assert error_of(closed)["code"] == "session_closed" and "was closed" in error_of(closed)["message"]
        for http_client, session in ((http, UNKNOWN_ID), (other, session_id)):
            unknown = await http_client.post(
                f"{API}/jobs", json={"program_id": "script", "params": job(), "session_id": session}
            )
            assert unknown.status_code == 422 and f"no session with id {session!r}" in error_of(unknown)["message"]
        for body, words in [
            ({"program_id": "script", "params": job()}, "a backend to run on"),
            ({"program_id": "script", "backend": "nope"}, "no backend named 'nope'"),
            ({"program_id": "script", "backend": "q", "start_session": True}, "start_session"),
            ({"program_id": "script", "backend": "q", "params": {"__type__": "Mystery", "__value__": 1}}, "Mystery"),
            ({"program_id": "script", "backend": "q", "params": 7, "session_id": 3}, "session_id"),
        ]:
            refused = await http.post(f"{API}/jobs", json=body)
            assert refused.status_code == 422, body
            assert words in error_of(refused)["message"]
        wrong_backend = await open_session(http)
        mismatch = await http.post(
            f"{API}/jobs", json={"program_id": "script", "params": job(), "session_id": wrong_backend, "backend": "sim"}
        )
        assert mismatch.status_code == 422 and "runs on 'q'" in error_of(mismatch)["message"]
        assert local.backend("q").pending_jobs == 0

        app.begin_shutdown()
        stopping = await http.post(f"{API}/jobs", json={"program_id": "script", "params": job(), "backend": "q"})
        assert stopping.status_code == 503


async def test_params_are_decoded_within_the_servers_blob_limit() -> None:
    bomb = base64.standard_b64encode(zlib.compress(b"\0" * 2_000_000)).decode()
    async with ibm(server=ServerSettings(max_blob_bytes=1_000_000)) as (_, app), client(app) as http:
        refused = await http.post(
            f"{API}/jobs",
            json={"program_id": "script", "backend": "q", "params": {"x": {"__type__": "ndarray", "__value__": bomb}}},
        )
        assert refused.status_code == 422 and "more than 1000000 bytes" in error_of(refused)["message"]


# -- jobs -----------------------------------------------------------------------------------------


async def test_job_states_map_as_the_client_reads_them(autojump_clock: Clock) -> None:
    """SPEC J1, J2, J3, S14: Queued, Running, Completed, Failed and Cancelled, each with its reason."""
    slow = qpu("q", job_timeout=5.0)
    async with ibm([slow]) as (_, app), client(app) as http:
        session_id = await open_session(http)
        root = await submit(http, job(1), session_id=session_id, backend="q")
        failing = await submit(http, job(1, fail="boom"), session_id=session_id)
        hung = await submit(http, job(60), session_id=session_id)
        queued = await submit(http, job(1), session_id=session_id)
        assert root == session_id
        assert await state_of(http, root) == {"status": "Running"}
        assert await state_of(http, queued) == {"status": "Queued"}
        await trio.sleep(2.5)
        assert await state_of(http, root) == {"status": "Completed"}
        failed = await state_of(http, failing)
        assert failed["status"] == "Failed" and "boom" in failed["reason"] and "reason_code" not in failed
        await trio.sleep(5)
        timed_out = await state_of(http, hung)
        assert timed_out["status"] == "Failed" and timed_out["reason_code"] == 1305  # RuntimeJobMaxTimeoutError
        assert (await http.post(f"{API}/jobs/{queued}/cancel")).status_code == 204  # it was running (J2)
        await trio.sleep(0.1)  # a running job ends at its execution's next checkpoint
        document = (await http.get(f"{API}/jobs/{queued}")).json()
        assert document["state"]["status"] == "Cancelled" and "was cancelled" in document["state"]["reason"]
        assert document["program"] == {"id": "script"} and document["backend"] == "q"
        assert document["session_id"] == session_id and document["created"].endswith("Z")

        finished = await http.post(f"{API}/jobs/{root}/cancel")
        assert finished.status_code == 409  # the client raises RuntimeInvalidStateError; nothing changes (S16)
        assert "has already ended (Completed)" in error_of(finished)["message"]
        assert await state_of(http, root) == {"status": "Completed"}


async def test_cancelling_the_root_job_fails_the_rest_with_its_id(autojump_clock: Clock) -> None:
    """SPEC S14."""
    async with ibm() as (_, app), client(app) as http:
        session_id = await open_session(http)
        root = await submit(http, job(10), session_id=session_id)
        other = await submit(http, job(1), session_id=session_id)
        assert (await http.post(f"{API}/jobs/{root}/cancel")).status_code == 204
        await trio.sleep(0.1)
        assert (await state_of(http, root))["status"] == "Cancelled"
        failed = await state_of(http, other)
        assert failed["status"] == "Failed" and f"its root job {root} was cancelled" in failed["reason"]
        refused = await http.post(f"{API}/jobs", json={"program_id": "script", "params": job(), "session_id": root})
        assert refused.status_code == 409 and error_of(refused)["code"] == "session_closed"


async def test_results_travel_in_the_clients_own_encoding(autojump_clock: Clock) -> None:
    """SPEC P1: a sampler job's result decodes with the client's RuntimeDecoder; an error reads as text."""
    backends = [
        LocalBackend("q", qmux.BackendConfig(num_qubits=5), seed=7),
        LocalBackend("slow", qmux.BackendConfig(num_qubits=5), job_seconds=30),
    ]
    async with ibm(backends, shutdown_grace=0) as (local, app), client(app) as http:
        params = {"pubs": [(bell(), None, 100)], "options": {}, "version": 2, "support_qiskit": True}
        job_id = await submit(http, params, backend="q", program_id="sampler")
        await ended(local, job_id)
        assert (await state_of(http, job_id))["status"] == "Completed"
        response = await http.get(f"{API}/jobs/{job_id}/results")
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"
        result = json.loads(response.text, cls=RuntimeDecoder)
        counts = result[0].data.meas.get_counts()
        assert set(counts) == {"00", "11"} and sum(counts.values()) == 100
        assert result[0].data.meas.array.dtype == np.uint8

        circuit_without_register = QuantumCircuit(1)
        bad = await submit(http, {"pubs": [(circuit_without_register, None, None)]}, backend="q", program_id="sampler")
        await ended(local, bad)
        assert (await state_of(http, bad))["status"] == "Failed"
        text = await http.get(f"{API}/jobs/{bad}/results")
        assert text.status_code == 200 and "no classical register" in text.text  # the client's error message

        waiting = await submit(http, {"pubs": [(bell(), None, 10)]}, backend="slow", program_id="sampler")
        early = await http.get(f"{API}/jobs/{waiting}/results")
        assert early.status_code == 409 and error_of(early)["code"] == "job_not_finished"
        assert (await http.get(f"{API}/jobs/{waiting}/logs")).text == ""


async def test_jobs_are_listed_per_tenant_with_the_clients_filters(autojump_clock: Clock) -> None:
    async with ibm() as (_, app), client(app) as http, client(app, f"Bearer {OTHER_TOKEN}") as other:
        session_id = await open_session(http)
        in_session = [await submit(http, job(1), session_id=session_id, tags=["x"]) for _ in range(3)]
        job_mode = await submit(http, job(1), backend="sim")
        theirs = await submit(other, job(1), backend="sim")

        async def listed(http_client: httpx.AsyncClient, **query: Any) -> tuple[list[str], int]:
            response = await http_client.get(f"{API}/jobs", params={"exclude_params": "true", **query})
            assert response.status_code == 200, response.text
            body = response.json()
            return [document["id"] for document in body["jobs"]], body["count"]

        assert await listed(http) == ([job_mode, *reversed(in_session)], 4)  # newest first
        assert await listed(http, session_id=session_id) == (list(reversed(in_session)), 3)
        assert await listed(http, session_id=session_id, sort="ASC", limit=2, offset=1) == (in_session[1:], 3)
        assert await listed(http, tags="x", backend="q") == (list(reversed(in_session)), 3)
        assert await listed(http, pending="true") == ([job_mode, in_session[2], in_session[1], in_session[0]], 4)
        await trio.sleep(10)
        assert await listed(http, pending="true") == ([], 0)
        assert await listed(http, program="script", created_after="2000-01-01T00:00:00Z") == (
            [job_mode, *reversed(in_session)],
            4,
        )
        assert await listed(http, created_before="2000-01-01T00:00:00") == ([], 0)
        assert await listed(other) == ([theirs], 1)
        assert (await other.get(f"{API}/jobs/{job_mode}")).status_code == 404
        assert (await other.post(f"{API}/jobs/{job_mode}/cancel")).status_code == 404
        assert (await other.get(f"{API}/jobs/{job_mode}/results")).status_code == 404
        bad = await http.get(f"{API}/jobs", params={"limit": "0"})
        assert bad.status_code == 422 and error_of(bad)["code"] == "invalid_query"


async def test_a_status_poll_is_a_few_lookups() -> None:
    """The client polls ``GET /jobs/{id}`` every 0.1 s per session job: it must cost microseconds, not a round trip.

    The measure is generous (a millisecond per poll; about 50 us is typical) so that it only
    fails when a poll starts doing real work, such as waiting on the session actor.
    """
    async with ibm(shutdown_grace=0) as (_, app), client(app) as http:
        session_id = await open_session(http)
        job_id = await submit(http, job(60), session_id=session_id)
        scope = {
            "type": "http",
            "method": "GET",
            "path": f"{API}/jobs/{job_id}",
            "query_string": b"exclude_params=true",
            "headers": [(b"authorization", f"Bearer {TOKEN}".encode())],
        }
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        polls = 2000
        started = time.perf_counter()
        for _ in range(polls):
            await app(scope, receive, send)
        elapsed = time.perf_counter() - started
        assert statuses == [200] * polls
        assert elapsed / polls < 1e-3, f"{elapsed / polls * 1e6:.0f} us per poll"


# -- the app and the command line -----------------------------------------------------------------


async def test_ibm_paths_go_to_the_ibm_api_and_the_rest_to_the_native_one() -> None:
    async with ibm() as (_, app), client(app) as http:
        assert (await http.get("/openapi.json")).status_code == 200  # native, public
        assert (await http.get("/backends")).json()["devices"][0]["configuration"]  # native shape
        assert "configuration" not in (await http.get(f"{API}/backends")).json()["devices"][0]
        missing = await http.get(f"{API}/programs")
        assert missing.status_code == 404 and "part of IBM's Runtime API" in error_of(missing)["message"]
        wrong = await http.put(f"{API}/jobs")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "POST, GET"


def test_the_printed_environment_points_the_client_here() -> None:
    environment = client_environment("http://127.0.0.1:8765/", "secret token")
    assert environment == {
        "QISKIT_IBM_TOKEN": "secret token",
        "QISKIT_IBM_URL": "http://127.0.0.1:8765/experimental",
        "QISKIT_IBM_INSTANCE": "crn:v1:bluemix:public:quantum-computing:us-east:a/qmux:qmux::",
        "IAM_URL": "http://127.0.0.1:8765",
        "GLOBAL_SEARCH_URL": "http://127.0.0.1:8765/cloud/global-search",
        "GLOBAL_CATALOG_URL": "http://127.0.0.1:8765/cloud/global-catalog",
    }
    assert "export QISKIT_IBM_TOKEN='secret token'" in export_lines("http://h:1", "secret token")
    assert 'export QISKIT_IBM_TOKEN="$QMUX_TOKEN"' in export_lines("http://h:1", token_variable="QMUX_TOKEN")
    assert export_lines("http://h:1")[1].startswith("# export QISKIT_IBM_TOKEN=")


def test_ibm_compat_without_the_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "qiskit_ibm_runtime.json", None)  # as if not installed
    with pytest.raises(SystemExit) as exited:
        cli_main(["serve", "--ibm-compat"])
    assert exited.value.code == 2
    assert "pip install 'qmux[ibm]'" in capsys.readouterr().err


async def test_the_job_index_is_bounded_and_keeps_what_the_core_still_knows() -> None:
    """Like the native ownership table: past its limit it drops forgotten jobs, never known ones; order is kept."""
    index = JobIndex(limit=3)
    alive = {"j0"}  # a long-lived job at the front must not hide the forgotten ones behind it

    async def exists(job_id: str) -> bool:
        return job_id in alive

    for number in range(8):
        job_id = f"j{number}"
        alive.add(job_id)
        entry = JobEntry("a", None, "q", "script", index.stamp())
        await index.add(job_id, entry, exists)
        if number >= 2:
            alive.discard(f"j{number - 1}")  # the previous one ended and the core forgot it; j0 lives on
    order = [job_id for job_id, _ in index.in_order(newest_first=False)]
    assert len(order) <= 4  # its limit, plus the one the core still knows
    assert order[0] == "j0" and order[-1] == "j7"
    assert order == sorted(order, key=lambda job_id: int(job_id[1:]))  # submission order, despite the rotation


def test_V1_job_creation_times_follow_submission_even_when_the_wall_clock_ties_or_steps_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """IBM's listing orders by (created, id), on one node as across a cluster's: created never repeats or goes back."""
    index = JobIndex(limit=10)
    readings = iter([wall_now()] * 2 + [wall_now() - dt.timedelta(seconds=5)] + [wall_now() + dt.timedelta(hours=1)])
    monkeypatch.setattr("qmux.ibm._jobs.wall_now", lambda: next(readings))
    stamps = [index.stamp() for _ in range(4)]
    assert stamps == sorted(set(stamps)), "strictly increasing"
    assert stamps[1] - stamps[0] == dt.timedelta(microseconds=1) and stamps[2] - stamps[1] == stamps[1] - stamps[0]
    assert stamps[3] > stamps[2] + dt.timedelta(minutes=59), "the clock's own reading once it is ahead again"
