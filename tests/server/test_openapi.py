"""``/openapi.json`` matches what the server does: every route described, every description served,
and every answer of a full session's worth of traffic valid against the schema it is described by."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jsonschema
import pytest
import trio
from openapi_spec_validator import validate as validate_openapi
from trio.abc import Clock

import qmux
from qmux._http import Route
from qmux.server import QmuxApp
from qmux.server._page import PAGE_ROUTES
from qmux.testing import job, qpu

from ..support.remote import OTHER_TOKEN, asgi_client, served_app

UNKNOWN_ID = "0123456789abcdef0123"


@asynccontextmanager
async def recording_app() -> AsyncIterator[tuple[QmuxApp, dict[str, Any], list[httpx.Response]]]:
    """The app, its OpenAPI document, and a list every answer through `client_of` is appended to."""
    async with served_app([qpu("q"), qpu("sim", simulator=True, concurrency=4)]) as (_, app):
        async with asgi_client(app, token=None) as anonymous:
            document: dict[str, Any] = (await anonymous.get("/openapi.json")).json()
        yield app, document, []


def api_routes(app: QmuxApp) -> list[Route]:
    """The routes the document describes: every route but the Jobs page's (HTML for people, not API)."""
    return [route for route in app.routes if route not in PAGE_ROUTES]


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def operation_for(document: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The documented operation a concrete request path falls under."""
    for template, item in document["paths"].items():
        pattern = re.sub(r"\{[a-z_]+\}", "[^/]+", template)
        if re.fullmatch(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"{method} {path} is served but not documented")


def check_against_document(document: dict[str, Any], response: httpx.Response) -> None:
    """The status is documented for the operation, and the body validates against its schema."""
    request = response.request
    method = "GET" if request.method == "HEAD" else request.method
    template, operation = operation_for(document, method, request.url.path)
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{method} {template} answered {response.status_code}, not documented"
    content = documented.get("content")
    if request.method == "HEAD":
        assert response.content == b""
        return
    if content is None:
        assert response.content == b"", f"{method} {template} {response.status_code} has an undocumented body"
        return
    if "text/event-stream" in content:  # every event's data validates against the event schema
        assert response.headers["content-type"].startswith("text/event-stream")
        schema = content["text/event-stream"]["x-event-schema"]
        validator = jsonschema.Draft202012Validator({**schema, "components": document["components"]})
        events = [line.removeprefix("data: ") for line in response.text.splitlines() if line.startswith("data: ")]
        assert events, f"{method} {template} streamed no event"
        for data in events:
            validator.validate(json.loads(data))
        return
    media = response.headers["content-type"].split(";")[0]
    assert media in content, f"{method} {template} {response.status_code} answered {media}, documented {list(content)}"
    schema = content[media]["schema"]
    validator = jsonschema.Draft202012Validator({**schema, "components": document["components"]})
    validator.validate(response.json() if media == "application/json" else response.text)


def streams_events(document: dict[str, Any], template: str, method: str) -> bool:
    answers = document["paths"][template][method.lower()]["responses"].values()
    return any("text/event-stream" in answer.get("content", {}) for answer in answers)


def test_the_document_is_valid_openapi_3_1() -> None:
    async def fetch() -> dict[str, Any]:
        async with recording_app() as (_, document, _):
            return document

    document = trio.run(fetch)
    validate_openapi(document)
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}


async def test_every_served_route_is_described_and_every_description_is_served() -> None:
    async with recording_app() as (app, document, _):
        served = {(route.method, route.path) for route in api_routes(app)}
        assert served == operations(document)
        async with asgi_client(app) as client:
            for method, template in sorted(served):
                path = re.sub(r"\{[a-z_]+\}", UNKNOWN_ID, template)
                # an event stream of everything never ends: ask for an unknown session's (a 404)
                params = {"session_id": UNKNOWN_ID} if streams_events(document, template, method) else None
                response = await client.request(method, path, params=params)
                if response.status_code in (404, 405):  # an unknown id is fine; an unknown route is not
                    assert response.json()["error"]["code"] not in ("route_not_found", "method_not_allowed")
                check_against_document(document, response)


async def test_documented_parameters_bodies_and_security_match_the_routes() -> None:
    async with recording_app() as (app, document, _):
        for route in api_routes(app):
            operation = document["paths"][route.path][route.method.lower()]
            names = {p["name"] for p in operation.get("parameters", ())}
            assert set(route.path_params) <= names
            assert ("requestBody" in operation) == (route.body is not None)
            assert (operation.get("security") == []) == route.public
        results = document["paths"]["/jobs/{job_id}/results"]["get"]
        wait = next(p for p in results["parameters"] if p["name"] == "wait")
        assert wait["in"] == "query" and wait["schema"]["minimum"] == 0
        create = document["components"]["schemas"]["CreateSession"]
        assert create["additionalProperties"] is False and create["required"] == ["backend"]
        configuration = document["components"]["schemas"]["BackendConfiguration"]["properties"]
        assert set(configuration) == {f.name for f in __import__("attrs").fields(qmux.BackendConfig)}


async def test_every_answer_of_a_full_workload_is_described_by_the_document(autojump_clock: Clock) -> None:
    async with recording_app() as (app, document, answers):

        async def record(response: httpx.Response) -> None:
            await response.aread()
            answers.append(response)

        hooks = {"response": [record]}
        async with asgi_client(app) as alice, asgi_client(app, token=OTHER_TOKEN) as bob:
            alice.event_hooks = bob.event_hooks = hooks
            async with asgi_client(app, token=None) as anonymous:
                anonymous.event_hooks = hooks
                await anonymous.get("/backends")
                await anonymous.get("/openapi.json")
            await alice.get("/backends")
            await alice.head("/backends")
            await alice.get("/backends/q/status")
            await alice.get("/backends/nope/status")
            sid = (await alice.post("/sessions", json={"backend": "q", "max_ttl": 600})).json()["id"]
            await alice.post("/sessions", json={"backend": "q", "max_ttl": 1e9})
            await alice.post("/sessions", json={"backend": "q", "surprise": True})
            await alice.post("/sessions", content=b"{not json", headers={"content-type": "application/json"})
            await alice.get(f"/sessions/{sid}")
            await bob.get(f"/sessions/{sid}")
            root = (await alice.post("/jobs", json={"program_id": "p", "session_id": sid, "params": job(3)})).json()
            failing = await alice.post("/jobs", json={"program_id": "p", "session_id": sid, "params": job(1, fail="x")})
            await alice.get(f"/jobs/{root['id']}")
            await alice.get(f"/jobs/{root['id']}/results", params={"wait": 1})
            await alice.get(f"/jobs/{root['id']}/results", params={"wait": 10})
            await alice.get(f"/jobs/{failing.json()['id']}/results", params={"wait": 10})
            await alice.get(f"/jobs/{root['id']}/results", params={"wait": "x"})
            await alice.patch(f"/sessions/{sid}", json={"accepting_jobs": False})
            await alice.post("/jobs", json={"program_id": "p", "session_id": sid})
            await alice.delete(f"/sessions/{sid}/close")
            lone = (await alice.post("/jobs", json={"program_id": "p", "backend": "sim", "params": job(5)})).json()
            await alice.post(f"/jobs/{lone['id']}/cancel")
            await alice.get(f"/jobs/{lone['id']}/results")
            listed = (await alice.get("/sessions", params={"limit": 1})).json()
            await alice.get("/sessions", params={"cursor": listed["next"] or "", "state": "closed"})
            await alice.get("/sessions", params={"state": "sleeping"})
            await alice.get("/jobs", params=[("tags", "a"), ("tags", "b"), ("status", "DONE")])
            await alice.get("/jobs", params={"cursor": "?"})
            await alice.get("/usage", params={"since": "2026-01-01T00:00:00+00:00"})
            await alice.get("/backends/q/queue")
            await alice.get(f"/jobs/{root['id']}/queue")
            await alice.put(f"/jobs/{root['id']}/tags", json={"tags": ["x"]})
            await alice.put(f"/jobs/{root['id']}/tags", json={"tags": "x"})
            await bob.put(f"/jobs/{root['id']}/tags", json={"tags": ["x"]})
            await alice.get("/events", params={"job_id": root["id"]})  # ended: the stream ends at once
            await alice.get("/events", params={"session_id": sid})  # closed, its jobs ended: it ends too
            await alice.get("/events", params={"session_id": UNKNOWN_ID})
            await alice.get("/nowhere")
            await alice.put("/jobs")
        assert any(r.headers.get("content-type", "").startswith("text/event-stream") for r in answers)
        statuses = {response.status_code for response in answers}
        assert statuses >= {200, 201, 202, 204, 400, 401, 404, 405, 409, 422}
        for response in answers:
            if response.status_code in (404, 405) and response.json()["error"]["code"] in (
                "route_not_found",
                "method_not_allowed",
            ):
                continue  # not an operation of the API
            check_against_document(document, response)


@pytest.mark.parametrize("path", ["/openapi.json"])
async def test_the_document_is_served_as_json_and_is_stable(path: str) -> None:
    async with recording_app() as (app, document, _), asgi_client(app, token=None) as anonymous:
        again = await anonymous.get(path)
        assert again.headers["content-type"] == "application/json" and again.json() == document
