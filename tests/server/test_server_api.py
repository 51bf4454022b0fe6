"""The HTTP API itself, spoken raw: shapes, auth, tenants, refusals, long polls, shutdown.

Requests go to the ASGI app in memory (httpx.ASGITransport), so the virtual clock drives the
long polls. What the front door adds is checked here; the session rules themselves are the
core suite's, which also runs through the remote client (``service_factory``'s "remote").
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
from trio.abc import Clock

import qmux
from qmux import _wire
from qmux.server import QmuxApp, ServerSettings
from qmux.testing import ScriptedBackend, job, qpu

from ..support.remote import OTHER_TOKEN, TOKEN, asgi_client, served_app

SESSION_KEYS = {
    "id",
    "backend_name",
    "interactive_ttl",
    "max_ttl",
    "active_ttl",
    "state",
    "accepting_jobs",
    "last_job_started",
    "last_job_completed",
    "started_at",
    "closed_at",
    "activated_at",
    "mode",
    "elapsed_time",
    "closed_reason",
    "timestamps",
    "failure_policy",
    "max_jobs",
}
UNKNOWN_ID = "0123456789abcdef0123"
BOB_DIGEST = _wire.token_digest(OTHER_TOKEN)


@asynccontextmanager
async def api(
    server: ServerSettings | None = None, *, backends: list[ScriptedBackend] | None = None, **service: Any
) -> AsyncIterator[tuple[qmux.Service, QmuxApp, httpx.AsyncClient]]:
    """A service on backends "q" (QPU) and "sim" (simulator, 4 slots), its app, and tenant a's client."""
    if backends is None:
        backends = [qpu("q"), qpu("sim", simulator=True, concurrency=4)]
    async with (
        served_app(backends, qmux.ServiceSettings(**service), server) as (local, app),
        asgi_client(app) as client,
    ):
        yield local, app, client


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    detail: dict[str, Any] = response.json()["error"]
    assert detail["message"] and detail["code"] and detail["type"]
    return detail


async def open_session(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/sessions", json={"backend": "q", **body})
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    return document


async def submit(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/jobs", json={"program_id": "script", **body})
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    return document


# -- backends -------------------------------------------------------------------------------------


async def test_backends_are_listed_with_their_configuration_and_queue() -> None:
    async with api() as (_, _, client):
        response = await client.get("/backends")
        assert response.status_code == 200
        devices = {d["name"]: d for d in response.json()["devices"]}
        assert set(devices) == {"q", "sim"}
        assert devices["q"]["status"] == {"name": "online"}
        assert devices["q"]["queue_length"] == 0 and devices["q"]["qubits"] == 127
        assert devices["sim"]["configuration"]["simulator"] is True
        assert devices["sim"]["configuration"]["concurrency"] == 4
        status = (await client.get("/backends/q/status")).json()
        assert status["state"] is True and status["status"] == "active" and status["length_queue"] == 0
        missing = await client.get("/backends/nope/status")
        assert missing.status_code == 404 and error_of(missing)["type"] == "BackendNotFoundError"


async def test_every_authenticated_answer_carries_the_queue_depths(autojump_clock: Clock) -> None:
    async with api() as (_, _, client):
        for _ in range(3):
            await submit(client, backend="q", params=job(10))
        response = await client.get("/backends")
        assert json.loads(response.headers["qmux-pending-jobs"]) == {"q": 2, "sim": 0}
        refused = await client.get("/backends", headers={"authorization": "Bearer wrong-token"})
        assert "qmux-pending-jobs" not in refused.headers


async def test_head_answers_like_get_without_a_body() -> None:
    async with api() as (_, _, client):
        response = await client.head("/backends")
        assert response.status_code == 200 and response.content == b""


# -- auth -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", f"bearer  {TOKEN}x"])
async def test_requests_without_a_known_bearer_token_answer_401(authorization: str | None) -> None:
    async with api() as (local, app, _):
        headers = {"authorization": authorization} if authorization is not None else {}
        async with asgi_client(app, token=None) as anonymous:
            for method, path, body in [
                ("GET", "/backends", None),
                ("POST", "/sessions", {"backend": "q"}),
                ("POST", "/jobs", {"program_id": "script", "backend": "q"}),
                ("GET", f"/jobs/{UNKNOWN_ID}", None),
            ]:
                response = await anonymous.request(method, path, json=body, headers=headers)
                assert response.status_code == 401, (method, path)
                assert response.headers["www-authenticate"].startswith("Bearer")
                assert error_of(response)["type"] == "AuthenticationError"
        assert local.stats() == {"open_sessions": 0, "finished_sessions": 0, "jobs": 0}  # nothing was created
        assert local.backend("q").pending_jobs == 0


async def test_the_scheme_is_case_insensitive_and_the_openapi_document_is_public() -> None:
    async with api() as (_, app, _), asgi_client(app, token=None) as anonymous:
        assert (await anonymous.get("/backends", headers={"authorization": f"bearer {TOKEN}"})).status_code == 200
        assert (await anonymous.get("/openapi.json")).status_code == 200


# -- tenants --------------------------------------------------------------------------------------


async def test_two_tenants_cannot_see_touch_or_use_each_others_sessions_and_jobs(autojump_clock: Clock) -> None:
    async with api() as (_, app, alice), asgi_client(app, token=OTHER_TOKEN) as bob:
        alice_seed = "00112233445566778899"
        session = await open_session(alice, id_seed=alice_seed)
        sid = session["id"]
        root = await submit(alice, session_id=sid, params=job(5, value=1))
        lone = await submit(alice, backend="sim", params=job(5, value=2))
        never = (await alice.get(f"/sessions/{UNKNOWN_ID}")).json()["error"]

        attempts = [
            ("GET", f"/sessions/{sid}", None),
            ("PATCH", f"/sessions/{sid}", {"accepting_jobs": False}),
            ("DELETE", f"/sessions/{sid}/close", None),
            ("GET", f"/jobs/{root['id']}", None),
            ("GET", f"/jobs/{lone['id']}/results", None),
            ("POST", f"/jobs/{lone['id']}/cancel", None),
            ("POST", f"/jobs/{root['id']}/cancel", None),
            ("POST", "/jobs", {"program_id": "script", "session_id": sid, "params": job(1)}),
        ]
        for method, path, body in attempts:
            response = await bob.request(method, path, json=body)
            assert response.status_code == 404, (method, path, response.text)
            detail = error_of(response)
            assert detail["type"] in {"SessionNotFoundError", "JobNotFoundError"}
            if detail["type"] == "SessionNotFoundError":  # the same answer as for an id that never existed
                assert detail["message"] == never["message"].replace(UNKNOWN_ID, sid)
        # a seed equal to alice's id (or to alice's seed) opens bob's own session, under an id of his
        # namespace: the answer is the one an unused seed gets, so it tells bob nothing about alice
        for seed in (sid, alice_seed):
            taken = await bob.post("/sessions", json={"backend": "q", "id_seed": seed})
            assert taken.status_code == 201 and taken.json()["id"] == _wire.session_id_from_seed(BOB_DIGEST, seed)
            assert taken.json()["id"] != sid

        # and nothing of alice's changed
        after = (await alice.get(f"/sessions/{sid}")).json()
        assert after["accepting_jobs"] is True and after["state"] == "active"
        assert (await alice.get(f"/jobs/{root['id']}/results?wait=60")).json() == 1
        assert (await alice.get(f"/jobs/{lone['id']}/results?wait=60")).json() == 2


# -- refusals: 4xx with a JSON error that says what was wrong, and nothing changed -----------------

MALFORMED: list[tuple[str, str, dict[str, Any], int, str, str]] = [
    # (method, path, request kwargs, status, code, words in the message)
    ("POST", "/sessions", {"content": b"{bad"}, 400, "malformed_json", "not valid JSON"),
    ("POST", "/sessions", {"content": b"\xff\xfe"}, 400, "malformed_json", "not valid JSON"),
    ("POST", "/sessions", {"content": b""}, 400, "malformed_json", "needs a JSON body"),
    ("POST", "/sessions", {"json": []}, 422, "invalid_body", "Expected `object`, got `array`"),
    ("POST", "/sessions", {"json": {"backend": 1}}, 422, "invalid_body", "Expected `str`, got `int` - at `$.backend`"),
    ("POST", "/sessions", {"json": {"backend": "q", "bogus": 1}}, 422, "invalid_body", "unknown field `bogus`"),
    ("POST", "/sessions", {"json": {"backend": "q", "max_ttl": -5}}, 422, "invalid_body", "$.max_ttl"),
    ("POST", "/sessions", {"json": {"backend": "q", "max_ttl": "25m"}}, 422, "invalid_body", "$.max_ttl"),
    (
        "POST",
        "/sessions",
        {"json": {"backend": "q", "max_ttl": 9999}},
        422,
        "invalid_input",
        "above the max_ttl of backend 'q'",
    ),
    ("POST", "/sessions", {"json": {"backend": "q", "mode": "solo"}}, 422, "invalid_body", "$.mode"),
    ("POST", "/sessions", {"json": {"backend": "q", "id_seed": "NOT-A-SEED"}}, 422, "invalid_body", "$.id_seed"),
    ("POST", "/sessions", {"json": {"backend": "nope"}}, 404, "backend_not_found", "no backend named 'nope'"),
    (
        "POST",
        "/sessions",
        {"content": b"{}", "headers": {"content-type": "text/plain"}},
        415,
        "unsupported_media_type",
        "application/json",
    ),
    ("POST", "/jobs", {"json": {"program_id": "script"}}, 422, "invalid_input", "needs a session_id, or a backend"),
    ("POST", "/jobs", {"json": {"program_id": 7, "backend": "q"}}, 422, "invalid_body", "$.program_id"),
    ("POST", "/jobs", {"json": {"program_id": "", "backend": "q"}}, 422, "invalid_body", "$.program_id"),
    (
        "POST",
        "/jobs",
        {"json": {"program_id": "x", "backend": "q", "params": {"__type__": "ndarray", "__value__": "!"}}},
        422,
        "invalid_input",
        "not valid base64",
    ),
    (
        "POST",
        "/jobs",
        {"json": {"program_id": "x", "backend": "q", "params": {"__type__": "Pickle", "__value__": ""}}},
        422,
        "invalid_input",
        "does not know",
    ),
    ("POST", "/jobs", {"json": {"program_id": "x", "backend": "q", "options": []}}, 422, "invalid_body", "$.options"),
    ("POST", "/jobs", {"json": {"program_id": "x", "session_id": UNKNOWN_ID}}, 404, "session_not_found", UNKNOWN_ID),
    ("GET", f"/jobs/{UNKNOWN_ID}/results", {"params": {"wait": "soon"}}, 422, "invalid_query", "$.wait"),
    ("GET", f"/jobs/{UNKNOWN_ID}/results", {"params": {"wait": "-1"}}, 422, "invalid_query", "$.wait"),
    (
        "GET",
        f"/jobs/{UNKNOWN_ID}/results",
        {"params": {"when": "1"}},
        422,
        "invalid_query",
        "unknown query parameter `when`",
    ),
    ("GET", "/backends", {"params": {"x": "1"}}, 422, "invalid_query", "takes no query parameters"),
    ("DELETE", f"/sessions/{UNKNOWN_ID}/close", {"content": b"{}"}, 400, "unexpected_body", "takes no body"),
    ("GET", "/nowhere", {}, 404, "route_not_found", "/openapi.json"),
    ("DELETE", "/backends", {}, 405, "method_not_allowed", "allowed: GET"),
    ("GET", f"/jobs/{UNKNOWN_ID}", {}, 404, "job_not_found", UNKNOWN_ID),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code", "words"), MALFORMED)
async def test_malformed_requests_answer_4xx_saying_what_was_wrong_and_change_nothing(
    method: str, path: str, kwargs: dict[str, Any], status: int, code: str, words: str
) -> None:
    backends = [qpu("q"), qpu("sim", simulator=True)]
    async with api(backends=backends) as (local, _, client):
        response = await client.request(method, path, **kwargs)
        assert response.status_code == status, response.text
        detail = error_of(response)
        assert detail["code"] == code
        assert words in detail["message"]
        assert local.stats() == {"open_sessions": 0, "finished_sessions": 0, "jobs": 0}
        assert all(handle.pending_jobs == 0 for handle in local.backends())
        assert not any(backend.executions for backend in backends)


async def test_bodies_over_the_limit_answer_413_before_or_while_reading() -> None:
    async with api(ServerSettings(max_body_bytes=100)) as (local, app, client):
        big = {"program_id": "script", "backend": "q", "params": {"blob": "x" * 200}}
        response = await client.post("/jobs", json=big)
        assert response.status_code == 413 and error_of(response)["code"] == "too_large"

        # no Content-Length (a chunked upload): the limit bites while reading, speaking ASGI directly
        chunks = [{"type": "http.request", "body": b"x" * 40, "more_body": True}] * 10
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return chunks.pop()

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        headers = [(b"authorization", f"Bearer {TOKEN}".encode()), (b"content-type", b"application/json")]
        await app({"type": "http", "method": "POST", "path": "/jobs", "headers": headers}, receive, send)
        assert sent[0]["status"] == 413 and len(chunks) == 7  # it stopped reading at the limit
        assert local.stats() == {"open_sessions": 0, "finished_sessions": 0, "jobs": 0}


async def test_reopening_a_session_is_refused_and_changes_nothing() -> None:
    async with api() as (_, _, client):
        sid = (await open_session(client))["id"]
        response = await client.patch(f"/sessions/{sid}", json={"accepting_jobs": True})
        assert response.status_code == 422 and "cannot start accepting jobs again" in error_of(response)["message"]
        assert (await client.get(f"/sessions/{sid}")).json()["accepting_jobs"] is True
        wrong = await client.post("/jobs", json={"program_id": "x", "session_id": sid, "backend": "sim"})
        assert wrong.status_code == 422 and "runs on 'q'" in error_of(wrong)["message"]


# -- sessions over HTTP ---------------------------------------------------------------------------


async def test_session_lifecycle_in_ibm_shapes(autojump_clock: Clock) -> None:
    async with api() as (_, _, client):
        document = await open_session(client, max_ttl=600, mode="batch", instance="crn:ignored")
        assert set(document) == SESSION_KEYS  # SPEC S18 under IBM's names
        assert document["state"] == "open" and document["max_ttl"] == 600 and document["mode"] == "batch"
        assert document["interactive_ttl"] == 10 and document["active_ttl"] == 600
        sid = document["id"]
        await submit(client, session_id=sid, backend="q", params=job(2))
        assert (await client.get(f"/sessions/{sid}")).json()["state"] == "active"
        assert (await client.patch(f"/sessions/{sid}", json={"accepting_jobs": False})).status_code == 204
        closing = (await client.get(f"/sessions/{sid}")).json()
        assert closing["accepting_jobs"] is False and closing["state"] == "active"  # S12: its job still runs
        refused = await client.post("/jobs", json={"program_id": "x", "session_id": sid})
        assert refused.status_code == 409  # S15
        assert error_of(refused)["type"] == "SessionClosedError" and error_of(refused)["reason"] == "closed"
        await trio.sleep(3)
        closed = (await client.get(f"/sessions/{sid}")).json()
        assert closed["state"] == "closed" and closed["closed_reason"] == "closed"
        for _ in range(2):  # S16: harmless twice
            assert (await client.delete(f"/sessions/{sid}/close")).status_code == 204
            assert (await client.patch(f"/sessions/{sid}", json={"accepting_jobs": False})).status_code == 204


async def test_a_client_seed_names_the_session_and_a_repeated_create_is_harmless() -> None:
    """The id is derived from the seed and the tenant's token: the client knows it before the answer."""
    expected = _wire.session_id_from_seed(_wire.token_digest(TOKEN), UNKNOWN_ID)
    async with api() as (local, _, client):
        first = await client.post("/sessions", json={"backend": "q", "id_seed": UNKNOWN_ID})
        assert first.status_code == 201 and first.json()["id"] == expected
        again = await client.post("/sessions", json={"backend": "q", "id_seed": UNKNOWN_ID})
        assert again.status_code == 200 and again.json()["id"] == expected  # a retried create
        assert local.stats()["open_sessions"] == 1
        elsewhere = await client.post("/sessions", json={"backend": "sim", "id_seed": UNKNOWN_ID})
        assert elsewhere.status_code == 422  # its own session, on another backend: a mistake of its own
        assert (await client.post("/sessions", json={"backend": "q", "id": expected})).status_code == 422


async def test_capacity_refusals_answer_429() -> None:
    async with api(max_open_sessions=1) as (_, _, client):
        await open_session(client)
        response = await client.post("/sessions", json={"backend": "q"})
        assert response.status_code == 429 and error_of(response)["type"] == "CapacityError"


# -- jobs and the long poll -----------------------------------------------------------------------


async def test_job_documents_use_ibm_states(autojump_clock: Clock) -> None:
    async with api() as (_, _, client):
        first = await submit(client, backend="q", params=job(5))
        second = await submit(client, backend="q", params=job(5))
        assert first["state"] == {"status": "Running", "reason": None}
        assert second["state"]["status"] == "Queued" and second["session_id"] is None
        assert second["program"] == {"id": "script"} and second["backend"] == "q"
        assert (await client.post(f"/jobs/{second['id']}/cancel")).status_code == 204
        cancelled = (await client.get(f"/jobs/{second['id']}", params={"exclude_params": "true"})).json()
        assert cancelled["state"]["status"] == "Cancelled" and "cancelled" in cancelled["state"]["reason"]
        await trio.sleep(6)
        assert (await client.get(f"/jobs/{first['id']}")).json()["state"]["status"] == "Completed"
        assert (await client.post(f"/jobs/{first['id']}/cancel")).status_code == 204  # S16


async def test_results_long_poll_waits_without_polling(autojump_clock: Clock) -> None:
    async with api() as (_, _, client):
        jid = (await submit(client, backend="q", params=job(5, value={"answer": 42})))["id"]
        start = trio.current_time()
        early = await client.get(f"/jobs/{jid}/results", params={"wait": 1})
        assert early.status_code == 202 and early.json()["state"]["status"] == "Running"
        assert trio.current_time() - start == pytest.approx(1)
        done = await client.get(f"/jobs/{jid}/results", params={"wait": 30})
        assert done.status_code == 200 and done.json() == {"answer": 42}
        assert trio.current_time() - start == pytest.approx(5)  # answered when the job ended, not at 30 s
        instant = await client.get(f"/jobs/{jid}/results")
        assert instant.status_code == 200


async def test_results_of_failed_and_cancelled_jobs_answer_409_with_the_reason(autojump_clock: Clock) -> None:
    async with api() as (_, _, client):
        failing = (await submit(client, backend="q", params=job(1, fail="boom")))["id"]
        queued = (await submit(client, backend="q", params=job(1)))["id"]
        await client.post(f"/jobs/{queued}/cancel")
        failed = await client.get(f"/jobs/{failing}/results", params={"wait": 10})
        assert failed.status_code == 409
        detail = error_of(failed)
        assert detail["type"] == "JobFailedError" and detail["reason"] == "backend_error"
        assert detail["job_id"] == failing and detail["cause"] == {"type": "RuntimeError", "message": "boom"}
        cancelled = error_of(await client.get(f"/jobs/{queued}/results"))
        assert cancelled["type"] == "JobCancelledError" and cancelled["reason"] == "cancelled"


async def test_the_long_poll_is_capped_by_the_server(autojump_clock: Clock) -> None:
    async with api(ServerSettings(long_poll=2)) as (_, _, client):
        jid = (await submit(client, backend="q", params=job(100)))["id"]
        start = trio.current_time()
        response = await client.get(f"/jobs/{jid}/results", params={"wait": 600})
        assert response.status_code == 202 and trio.current_time() - start == pytest.approx(2)


async def test_shutdown_answers_long_polls_at_once_and_refuses_new_work(autojump_clock: Clock) -> None:
    async with api() as (_, app, client):
        jid = (await submit(client, backend="q", params=job(100)))["id"]
        answers: list[httpx.Response] = []

        async def wait_for_result() -> None:
            answers.append(await client.get(f"/jobs/{jid}/results", params={"wait": 30}))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait_for_result)
            await trio.sleep(1)
            start = trio.current_time()
            app.begin_shutdown()
        assert trio.current_time() == start and answers[0].status_code == 202
        refused = await client.post("/sessions", json={"backend": "q"})
        assert refused.status_code == 503 and error_of(refused)["type"] == "ServiceClosedError"
        assert (await client.post("/jobs", json={"program_id": "x", "backend": "q"})).status_code == 503
        assert (await client.get(f"/jobs/{jid}")).status_code == 200  # reads still work


async def test_requests_past_the_in_flight_limit_answer_503_with_retry_after(autojump_clock: Clock) -> None:
    async with api(ServerSettings(max_in_flight=1)) as (_, _, client):
        jid = (await submit(client, backend="q", params=job(10)))["id"]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.get, f"/jobs/{jid}/results?wait=5")
            await trio.sleep(1)
            busy = await client.get("/backends")
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert error_of(busy)["code"] == "busy" and error_of(busy)["type"] == "CapacityError"
