"""Per-tenant admission and the pipeline's other bounds: no tenant's load changes another's answers.

Each test runs the app ``qmux serve --ibm-compat`` serves, in memory, on the virtual clock:
tenant "a" floods or misbehaves, tenant "b" asks the same thing meanwhile and must get the answer
it gets on an idle server. Requests that must reach the app as a real server delivers them
(a body that never ends, a client that leaves, a WebSocket handshake) are ASGI calls made by hand.
The same cases against a real ``qmux serve`` process are in ``tests/system/test_abuse.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import numpy as np
import pytest
import trio
from trio.abc import Clock

import qmux
from qmux import _wire
from qmux._http import MAX_JSON_DEPTH, AuthThrottle, HttpApp, HttpError, TokenBucket, check_json_depth
from qmux._http._admission import address_key
from qmux.ibm import mount_ibm
from qmux.server import ServerSettings, create_app
from qmux.testing import job, qpu

from ..support.remote import BASE_URL, OTHER_TOKEN, TENANTS, TOKEN

Scope = dict[str, Any]


@asynccontextmanager
async def served(server: ServerSettings | None = None, **service: Any) -> AsyncIterator[tuple[qmux.Service, HttpApp]]:
    """A service on scripted QPUs "q" and "r" and the app of ``qmux serve --ibm-compat`` over it."""
    async with qmux.open_service([qpu("q"), qpu("r")], settings=qmux.ServiceSettings(**service)) as local:
        yield local, mount_ibm(create_app(local, TENANTS, server), local, TENANTS)


def client(app: HttpApp, token: str | None = TOKEN, *, address: str = "127.0.0.1") -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers)


def error_of(response: httpx.Response) -> dict[str, Any]:
    detail: dict[str, Any] = response.json()["error"]
    return detail


# -- the token bucket --------------------------------------------------------------------------------


def test_a_token_bucket_lets_a_burst_through_then_its_rate() -> None:
    bucket = TokenBucket.full(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # nothing taken: the next token is 0.5 s away
    assert bucket.take(0.25) == pytest.approx(0.25)
    assert bucket.take(0.5) == 0.0
    assert bucket.take(100.0) == 0.0 and bucket.tokens == pytest.approx(2.0)  # refilled to its burst, one taken


# -- per-tenant rate and in-flight -------------------------------------------------------------------


async def test_a_tenant_past_its_rate_gets_429_and_another_tenant_no_difference(autojump_clock: Clock) -> None:
    settings = ServerSettings(rate_per_tenant=10, burst_per_tenant=20)
    async with served(settings) as (_, app), client(app) as a, client(app, OTHER_TOKEN) as b:
        answers = [(await a.get("/backends")).status_code for _ in range(20)]
        limited = await a.get("/experimental/backends")  # one bucket per tenant, whichever API it calls
        assert answers == [200] * 20 and limited.status_code == 429
        assert limited.headers["retry-after"] == "1"
        assert error_of(limited)["code"] == "rate_limited" and error_of(limited)["type"] == "CapacityError"
        assert "more than 10 requests a second" in error_of(limited)["message"]
        assert [(await b.get("/backends")).status_code for _ in range(20)] == [200] * 20  # b: its own bucket
        await trio.sleep(0.1)  # one token back at 10 a second
        assert (await a.get("/backends")).status_code == 200
        assert (await a.get("/backends")).status_code == 429


async def test_a_tenant_past_its_in_flight_limit_gets_503_and_another_tenant_no_difference(
    autojump_clock: Clock,
) -> None:
    async with (
        served(ServerSettings(max_in_flight_per_tenant=2)) as (_, app),
        client(app) as a,
        client(app, OTHER_TOKEN) as b,
    ):
        submitted = await a.post("/jobs", json={"program_id": "script", "backend": "q", "params": job(10)})
        job_id = submitted.json()["id"]
        async with trio.open_nursery() as nursery:
            for _ in range(2):  # a's two slots, held by long polls
                nursery.start_soon(a.get, f"/jobs/{job_id}/results?wait=5")
            await trio.sleep(1)
            busy = await a.get("/backends")
            assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
            assert error_of(busy)["code"] == "busy"
            assert "tenant 'a' has 2 requests in flight" in error_of(busy)["message"]
            assert (await b.get("/backends")).status_code == 200
            assert app.admission.in_flight("a") == 2 and app.admission.in_flight("b") == 0
        assert (await a.get("/backends")).status_code == 200  # the slots are back


# -- per-tenant open sessions and queued jobs ----------------------------------------------------------


async def test_a_tenants_open_sessions_are_bounded_and_another_tenant_still_opens(autojump_clock: Clock) -> None:
    async with (
        served(ServerSettings(max_open_sessions_per_tenant=2)) as (local, app),
        client(app) as a,
        client(app, OTHER_TOKEN) as b,
    ):
        opened = [(await a.post("/sessions", json={"backend": "q"})).json()["id"] for _ in range(2)]
        refused = await a.post("/experimental/sessions", json={"backend": "r", "mode": "batch"})  # IBM's too
        assert refused.status_code == 429 and error_of(refused)["type"] == "CapacityError"
        assert "tenant 'a' has 2 sessions open, its limit" in error_of(refused)["message"]
        assert (await b.post("/sessions", json={"backend": "q"})).status_code == 201
        assert local.open_sessions_of("a") == 2 and local.open_sessions_of("b") == 1
        await a.patch(f"/sessions/{opened[0]}", json={"accepting_jobs": False})
        await trio.sleep(0.1)
        assert (await a.post("/sessions", json={"backend": "r"})).status_code == 201


async def test_a_tenants_queued_jobs_are_bounded_and_another_tenant_still_submits(autojump_clock: Clock) -> None:
    async with (
        served(ServerSettings(max_queued_jobs_per_tenant=3)) as (local, app),
        client(app) as a,
        client(app, OTHER_TOKEN) as b,
    ):
        session = (await a.post("/sessions", json={"backend": "q"})).json()["id"]
        for body in ({"session_id": session}, {"session_id": session}, {"backend": "r"}):
            assert (await a.post("/jobs", json={"program_id": "script", "params": job(10), **body})).status_code == 201
        for path in ("/jobs", "/experimental/jobs"):
            refused = await a.post(path, json={"program_id": "script", "backend": "r", "params": job(1)})
            assert refused.status_code == 429, path
            assert "tenant 'a' has 3 jobs queued or running, its limit" in error_of(refused)["message"]
        one_more = {"program_id": "script", "backend": "r", "params": job(1)}
        assert (await b.post("/jobs", json=one_more)).status_code == 201
        assert local.unfinished_jobs_of("a") == 3
        await trio.sleep(20.5)  # the session's two jobs ran, one after the other, and r's
        assert local.unfinished_jobs_of("a") == 0 and local.unfinished_jobs_of("b") == 0
        assert (await a.post("/jobs", json=one_more)).status_code == 201


# -- failed authentication -------------------------------------------------------------------------


async def test_failed_authentication_is_throttled_per_address_and_valid_tokens_are_never_slowed(
    autojump_clock: Clock,
) -> None:
    settings = ServerSettings(failed_auth_per_minute=6, failed_auth_burst=3)
    async with (
        served(settings) as (_, app),
        client(app, address="10.0.0.1") as known,  # a valid token, used from the attacker's address before
        client(app, OTHER_TOKEN, address="10.0.0.1") as newcomer,  # a valid token never seen from there
        client(app, "a-wrong-token", address="10.0.0.1") as guesser,
        client(app, "a-wrong-token", address="10.0.0.2") as elsewhere,
    ):
        assert (await known.get("/backends")).status_code == 200
        assert [(await guesser.get("/backends")).status_code for _ in range(3)] == [401] * 3
        throttled = await guesser.get("/backends")
        assert throttled.status_code == 429 and throttled.headers["retry-after"] == "10"
        assert error_of(throttled)["code"] == "auth_throttled"
        assert error_of(throttled)["type"] == "AuthenticationError"
        assert (await known.get("/backends")).status_code == 200  # accepted from here before: served
        assert (await newcomer.get("/backends")).status_code == 429  # not checked while throttled
        assert (await elsewhere.get("/backends")).status_code == 401  # another address: its own count
        iam = await guesser.post("/identity/token", data={"grant_type": "x", "apikey": "y"})
        assert iam.status_code == 429  # the IAM token call is behind the same throttle
        await trio.sleep(10)  # one failure back, at six a minute
        assert (await newcomer.get("/backends")).status_code == 200
        assert (await guesser.get("/backends")).status_code == 401
        assert (await guesser.get("/backends")).status_code == 429


async def test_refused_api_keys_on_the_iam_token_call_count_as_failed_authentications(
    autojump_clock: Clock,
) -> None:
    settings = ServerSettings(failed_auth_per_minute=1, failed_auth_burst=2)
    async with served(settings) as (_, app), client(app, None, address="10.0.0.3") as anonymous:
        form = {"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": "not-a-tenants-token"}
        assert [(await anonymous.post("/identity/token", data=form)).status_code for _ in range(2)] == [400, 400]
        assert (await anonymous.post("/identity/token", data=form | {"apikey": TOKEN})).status_code == 429


async def test_the_throttle_remembers_a_bounded_number_of_addresses(autojump_clock: Clock) -> None:
    throttle = AuthThrottle(per_minute=60, burst=1, max_addresses=3)
    for n in range(10):
        throttle.failed(f"10.0.0.{n}")
    assert len(throttle) == 3
    throttle.check("10.0.0.0", None)  # forgotten: let through to be authenticated
    with pytest.raises(HttpError, match="too many failed authentications"):
        throttle.check("10.0.0.9", None)


@pytest.mark.parametrize(
    ("client", "key"),
    [
        (("192.0.2.7", 5), "192.0.2.7"),
        (("2001:db8:1:2:3:4:5:6", 5), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:ffff::1", 5), "2001:db8:1:2::/64"),  # one host's /64: one count
        (("::ffff:192.0.2.7", 5), "192.0.2.7"),
        (("testclient", 5), "testclient"),
        (None, None),
    ],
)
def test_addresses_are_counted_by_host_and_ipv6_by_its_64(client: object, key: str | None) -> None:
    assert address_key(client) == key


# -- bodies: time, depth, decoded size -------------------------------------------------------------


def scope(method: str, path: str, *, token: str = TOKEN, **more: Any) -> Scope:
    headers = [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json")]
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        **more,
    }


def recorder() -> tuple[list[dict[str, Any]], Callable[[dict[str, Any]], Awaitable[None]]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    return sent, send


async def test_a_body_that_does_not_arrive_in_time_answers_408_and_frees_its_slot(autojump_clock: Clock) -> None:
    """A slow sender (a slowloris) holds its slot for ``body_timeout`` at most, then gets 408."""
    async with served(ServerSettings(body_timeout=5.0)) as (local, app):
        sent, send = recorder()
        chunks = iter([b'{"backend": ', b'"q"'])

        async def receive() -> dict[str, Any]:
            chunk = next(chunks, None)
            if chunk is None:
                await trio.sleep_forever()  # the rest never comes
            await trio.sleep(1)
            return {"type": "http.request", "body": chunk, "more_body": True}

        started = trio.current_time()
        await app(scope("POST", "/sessions"), receive, send)
        assert trio.current_time() - started == pytest.approx(5.0)
        assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
        assert b"did not arrive within 5 s" in sent[1]["body"]
        assert app.admission.total == 0 and local.stats()["open_sessions"] == 0


async def test_a_long_poll_whose_client_leaves_gives_its_slot_back_at_once(autojump_clock: Clock) -> None:
    async with served() as (_, app), client(app) as a:
        job_id = (await a.post("/jobs", json={"program_id": "script", "backend": "q", "params": job(60)})).json()["id"]
        sent, send = recorder()
        gone = trio.Event()
        messages = iter([{"type": "http.request", "body": b"", "more_body": False}])

        async def receive() -> dict[str, Any]:
            message = next(messages, None)
            if message is None:
                await gone.wait()
                return {"type": "http.disconnect"}
            return message

        async with trio.open_nursery() as nursery:
            nursery.start_soon(app, scope("GET", f"/jobs/{job_id}/results", query_string=b"wait=30"), receive, send)
            await trio.sleep(2)
            assert app.admission.in_flight("a") == 1
            gone.set()
            left = trio.current_time()
        assert trio.current_time() == left  # not at the end of the 30 s wait
        assert app.admission.in_flight("a") == 0 and sent == []  # nobody to answer


@pytest.mark.parametrize("path", ["/jobs", "/experimental/jobs"])
async def test_json_nested_past_the_limit_is_a_clear_422_on_both_apis(autojump_clock: Clock, path: str) -> None:
    deep = "[" * 1000 + "]" * 1000  # ~2 KB: a recursive parser's RecursionError once
    body = f'{{"program_id": "script", "backend": "q", "params": {{"x": {deep}}}}}'
    async with served() as (local, app), client(app) as a:
        refused = await a.post(path, content=body, headers={"content-type": "application/json"})
        assert refused.status_code == 422
        assert error_of(refused)["code"] == "too_deep"
        assert f"nests deeper than {MAX_JSON_DEPTH} levels" in error_of(refused)["message"]
        assert local.stats()["jobs"] == 0


def test_the_depth_check_counts_structure_not_brackets_in_strings() -> None:
    at_limit = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    check_json_depth(at_limit)
    check_json_depth(b'{"text": "' + b"[" * 500 + b'\\"[[[["}')  # text, escapes included
    check_json_depth(b"[" + b"[]," * 5000 + b"[]]")  # wide, not deep
    with pytest.raises(HttpError, match="nests deeper"):
        check_json_depth(b"[" + at_limit + b"]")


@pytest.mark.parametrize("path", ["/jobs", "/experimental/jobs"])
async def test_what_one_request_decompresses_to_is_bounded_all_together(autojump_clock: Clock, path: str) -> None:
    """Two blobs under the limit each, over it together: refused before the second is inflated."""
    async with served(ServerSettings(max_blob_bytes=1_000_000)) as (local, app), client(app) as a:
        zeros = np.zeros(75_000)  # 600 kB, a few hundred bytes once compressed
        params = _wire.encode({"pubs": [], "a": zeros, "b": zeros})
        refused = await a.post(path, json={"program_id": "script", "backend": "q", "params": params})
        assert refused.status_code == 422
        message = error_of(refused)["message"]  # the second array is refused: 1e6 - (600 kB and its header) left
        assert "b<ndarray> decompresses to more than 399872 bytes, what is left of the limit" in message
        assert local.stats()["jobs"] == 0


# -- WebSocket --------------------------------------------------------------------------------------


@pytest.mark.parametrize("extension", [True, False])
async def test_a_websocket_handshake_is_refused_cleanly(extension: bool) -> None:
    async with served() as (_, app):
        sent, send = recorder()

        async def receive() -> dict[str, Any]:
            return {"type": "websocket.connect"}

        ws_scope = {"type": "websocket", "path": "/jobs", "headers": [], "client": ("127.0.0.1", 1)}
        if extension:
            ws_scope["extensions"] = {"websocket.http.response": {}}
        await app(ws_scope, receive, send)
        if extension:
            assert sent[0]["type"] == "websocket.http.response.start" and sent[0]["status"] == 403
            assert b"does not speak WebSocket" in sent[1]["body"]
        else:
            assert sent == [{"type": "websocket.close", "code": 1008}]
