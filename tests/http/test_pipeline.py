"""The one pipeline both front doors share: the same steps, the same refusals, each in its API's dialect.

Every test runs against the app ``qmux serve --ibm-compat`` serves (the native API with IBM's in
front of it), once per API: what the pipeline decides (busy, a handler's refusal, a handler's
bug, unknown routes, authentication, limits, the log line) must come out alike on both, and
where the dialects differ (404 hints, strictness, trace ids) each must keep its own.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import pytest
import structlog
import trio
from attrs import frozen
from trio.abc import Clock

import qmux
from qmux._http import Handler, HttpApp, HttpError, Reply, Request
from qmux.ibm import mount_ibm
from qmux.server import ServerSettings, create_app
from qmux.testing import job, qpu

from ..support.remote import BASE_URL, TENANTS, TOKEN

UNKNOWN_ID = "0123456789abcdef0123"
GENERIC_500 = {
    "error": {"code": "error", "message": "the server failed to handle this request; see its log", "type": "QmuxError"}
}


@frozen
class Door:
    """One API as a test reaches it: where its paths start, and what its own answers say."""

    name: str
    prefix: str
    list_backends: str
    unknown_route: str
    unauthorized: str
    strict: bool
    trace_header: str | None


DOORS = [
    Door("native", "", "list_backends", "see /openapi.json", "with a token the server knows", True, None),
    Door(
        "ibm",
        "/experimental",
        "ibm_list_backends",
        "qmux serves the part of IBM's Runtime API that qiskit-ibm-runtime uses",
        "with an access token from /identity/token",
        False,
        "uber-trace-id",
    ),
]
by_name = pytest.mark.parametrize("door", DOORS, ids=[door.name for door in DOORS])


@asynccontextmanager
async def served(server: ServerSettings | None = None) -> AsyncIterator[tuple[qmux.Service, HttpApp]]:
    """A service on scripted QPU "q" and the app of ``qmux serve --ibm-compat`` over it."""
    async with qmux.open_service([qpu("q")]) as local:
        yield local, mount_ibm(create_app(local, TENANTS, server), local, TENANTS)


def client(app: HttpApp, token: str | None = TOKEN) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=headers)


def replacing(app: HttpApp, operation_id: str, handler: Handler) -> HttpApp:
    """`app`, with `handler` in place of the handler of the route named `operation_id`."""
    doors = tuple(
        attrs.evolve(
            door,
            routes=tuple(
                attrs.evolve(route, handler=handler) if route.operation_id == operation_id else route
                for route in door.routes
            ),
        )
        for door in app.doors
    )
    return attrs.evolve(app, doors=doors)


# -- refusals and failures: one code path for both APIs ---------------------------------------------


async def test_past_the_in_flight_limit_both_apis_answer_the_same_busy_503(autojump_clock: Clock) -> None:
    """One server, one bound: a request held by the native API makes both APIs busy, with one answer."""
    async with served(ServerSettings(max_in_flight=1)) as (_, app), client(app) as http:
        submitted = await http.post("/jobs", json={"program_id": "script", "backend": "q", "params": job(10)})
        held = functools.partial(http.get, f"/jobs/{submitted.json()['id']}/results", params={"wait": 5})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(held)
            await trio.sleep(1)
            busy = {door.name: await http.get(f"{door.prefix}/backends") for door in DOORS}
        for response in busy.values():
            assert response.status_code == 503 and response.headers["retry-after"] == "1"
            assert response.json() == {
                "error": {
                    "code": "busy",
                    "message": "the server is handling 1 requests, its limit; retry shortly",
                    "type": "CapacityError",
                }
            }
        assert (await http.get("/experimental/backends")).status_code == 200  # the bound is released


@by_name
async def test_a_refusal_a_handler_raises_is_answered_with_its_own_status(door: Door) -> None:
    async def refuse(api: object, request: Request) -> Reply:
        raise HttpError(409, qmux.QmuxError("not now"), code="not_now", headers={"retry-after": "7"})

    async with served() as (_, app), client(replacing(app, door.list_backends, refuse)) as http:
        response = await http.get(f"{door.prefix}/backends")
    assert response.status_code == 409 and response.headers["retry-after"] == "7"
    assert response.json() == {"error": {"code": "not_now", "message": "not now", "type": "QmuxError"}}


@by_name
async def test_a_qmux_error_a_handler_raises_answers_with_its_class_status(door: Door) -> None:
    async def full(api: object, request: Request) -> Reply:
        raise qmux.CapacityError("no room")

    async with served() as (_, app), client(replacing(app, door.list_backends, full)) as http:
        response = await http.get(f"{door.prefix}/backends")
    assert response.status_code == 429
    assert response.json() == {"error": {"code": "capacity", "message": "no room", "type": "CapacityError"}}


@by_name
async def test_a_bug_in_a_handler_answers_500_says_nothing_more_and_is_logged_whole(door: Door) -> None:
    async def broken(api: object, request: Request) -> Reply:
        raise KeyError("internal detail")

    with structlog.testing.capture_logs() as logs:
        async with served() as (_, app), client(replacing(app, door.list_backends, broken)) as http:
            response = await http.get(f"{door.prefix}/backends")
    assert response.status_code == 500 and response.json() == GENERIC_500
    assert "internal detail" not in response.text
    [error] = [event for event in logs if event["event"] == "http.error"]
    assert error["api"] == door.name and error["route"] == door.list_backends
    assert isinstance(error["exc_info"], KeyError) and error["exc_info"].__traceback__ is not None


@by_name
async def test_nothing_is_changed_by_a_refused_request(door: Door) -> None:
    async with served(ServerSettings(max_body_bytes=100)) as (local, app), client(app) as http:
        big = await http.post(f"{door.prefix}/sessions", json={"backend": "q", "instance": "x" * 200})
        assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
        anonymous = await http.post(f"{door.prefix}/sessions", json={"backend": "q"}, headers={"authorization": ""})
        assert anonymous.status_code == 401
        app.begin_shutdown()
        stopping = await http.post(f"{door.prefix}/sessions", json={"backend": "q"})
        assert stopping.status_code == 503 and stopping.json()["error"]["type"] == "ServiceClosedError"
        assert local.stats() == {"open_sessions": 0, "finished_sessions": 0, "jobs": 0}


# -- each dialect keeps its own words ---------------------------------------------------------------


@by_name
async def test_unknown_routes_and_methods_answer_in_the_dialect_of_the_api_they_fall_under(door: Door) -> None:
    async with served() as (_, app), client(app) as http:
        path = f"{door.prefix}/nowhere"
        missing = await http.get(path)
        assert missing.status_code == 404
        assert missing.json()["error"] == {
            "code": "route_not_found",
            "message": f"no route {path!r}: {door.unknown_route}",
            "type": "NotFoundError",
        }
        wrong = await http.delete(f"{door.prefix}/backends")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "GET"
        assert wrong.json()["error"]["code"] == "method_not_allowed"
        assert wrong.json()["error"]["type"] == "InvalidInputError"


@by_name
async def test_a_request_without_a_token_is_asked_for_the_apis_credential(door: Door) -> None:
    async with served() as (_, app), client(app, token=None) as http:
        response = await http.get(f"{door.prefix}/backends")
    assert response.status_code == 401 and response.headers["www-authenticate"] == 'Bearer realm="qmux"'
    detail = response.json()["error"]
    assert detail["code"] == "unauthorized" and detail["type"] == "AuthenticationError"
    assert door.unauthorized in detail["message"]


@by_name
async def test_what_a_route_does_not_take_is_refused_by_the_strict_dialect_and_ignored_by_the_lenient(
    door: Door,
) -> None:
    async with served() as (_, app), client(app) as http:
        with_body = await http.request("DELETE", f"{door.prefix}/sessions/{UNKNOWN_ID}/close", content=b"{}")
        with_query = await http.get(f"{door.prefix}/backends", params={"surprise": "1"})
    if door.strict:
        assert with_body.status_code == 400 and with_body.json()["error"]["code"] == "unexpected_body"
        assert with_query.status_code == 422 and with_query.json()["error"]["code"] == "invalid_query"
    else:  # both reach their handler
        assert with_body.status_code == 404 and with_body.json()["error"]["code"] == "session_not_found"
        assert with_query.status_code == 200


@by_name
async def test_each_request_is_logged_once_with_its_api_and_a_trace_id_where_the_dialect_sends_one(
    door: Door,
) -> None:
    with structlog.testing.capture_logs() as logs:
        async with served() as (_, app), client(app) as http:
            response = await http.get(f"{door.prefix}/backends")
    [event] = [event for event in logs if event["event"] == "http.request"]
    assert event["api"] == door.name and event["route"] == door.list_backends
    assert (event["status"], event["tenant"], event["method"]) == (200, "a", "GET")
    if door.trace_header is None:
        assert "trace_id" not in event and "uber-trace-id" not in response.headers
    else:
        assert response.headers[door.trace_header] == event["trace_id"]


async def test_ibms_status_polls_are_logged_at_debug_level(autojump_clock: Clock) -> None:
    with structlog.testing.capture_logs() as logs:
        async with served() as (_, app), client(app) as http:
            job_id = (
                await http.post("/experimental/jobs", json={"program_id": "script", "backend": "q", "params": job()})
            ).json()["id"]
            await http.get(f"/experimental/jobs/{job_id}")
            await http.get(f"/jobs/{job_id}")
    levels = {event["route"]: event["log_level"] for event in logs if event["event"] == "http.request"}
    assert levels == {"ibm_submit_job": "info", "ibm_get_job": "debug", "get_job": "info"}


async def test_repeatable_query_parameters_are_those_the_schema_types_as_lists(autojump_clock: Clock) -> None:
    async with served() as (_, app), client(app) as http:
        payload: dict[str, Any] = {"program_id": "script", "backend": "q", "params": job(), "tags": ["x", "y"]}
        tagged = (await http.post("/experimental/jobs", json=payload)).json()["id"]
        both = await http.get("/experimental/jobs", params=[("tags", "x"), ("tags", "y")])
        assert [document["id"] for document in both.json()["jobs"]] == [tagged]
        twice = await http.get("/experimental/jobs", params=[("limit", "1"), ("limit", "2")])
        assert twice.status_code == 422 and "'limit' is given twice" in twice.json()["error"]["message"]
