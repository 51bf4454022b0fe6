"""Seeing what runs, spoken raw over HTTP (SPEC V1, E1, U1, Q1, T1): pages, event streams, tenancy.

What the front door adds to the core's rules: cursors that neither skip nor repeat (many sessions
are opened at one virtual instant here), Server-Sent Events with their ids, resumption with
``Last-Event-ID``, a subscription that ends with its connection, streams that hold no in-flight
slot, and a tenant that never sees another's sessions, jobs, events or usage. The rules
themselves run both ways in ``tests/core/test_seeing.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from trio.abc import Clock

import qmux
from qmux.server import QmuxApp, ServerSettings
from qmux.testing import job, qpu

from ..support.remote import OTHER_TOKEN, TOKEN, served_app
from .streaming import SseReader, events_of, streaming_client

UNKNOWN_ID = "0123456789abcdef0123"


@asynccontextmanager
async def two_tenants(
    server: ServerSettings | None = None, **settings: Any
) -> AsyncIterator[tuple[qmux.Service, QmuxApp, httpx.AsyncClient, httpx.AsyncClient]]:
    """A service on "q" and "sim", its app, and clients of tenants a and b whose answers stream."""
    backends = [qpu("q"), qpu("sim", simulator=True, concurrency=4)]
    async with (
        served_app(backends, qmux.ServiceSettings(**settings), server) as (service, app),
        trio.open_nursery() as nursery,
        streaming_client(app, nursery, TOKEN) as alice,
        streaming_client(app, nursery, OTHER_TOKEN) as bob,
    ):
        yield service, app, alice, bob
        nursery.cancel_scope.cancel()


async def open_session(client: httpx.AsyncClient, backend: str = "q") -> str:
    response = await client.post("/sessions", json={"backend": backend})
    assert response.status_code == 201, response.text
    session_id: str = response.json()["id"]
    return session_id


async def submit(client: httpx.AsyncClient, **body: Any) -> str:
    response = await client.post("/jobs", json={"program_id": "script", **body})
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


async def all_pages(client: httpx.AsyncClient, path: str, field: str, **params: Any) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        response = await client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        pages.append(response.json()[field])
        cursor = response.json()["next"]
        if cursor is None:
            return pages


# -- V1: pages ----------------------------------------------------------------------------------


async def test_V1_pages_neither_skip_nor_repeat_sessions_opened_at_one_instant(autojump_clock: Clock) -> None:
    async with two_tenants() as (_, _, alice, bob):
        mine = [await open_session(alice) for _ in range(23)]
        await open_session(bob)
        pages = await all_pages(alice, "/sessions", "sessions", limit=5)
        assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
        listed = [document["id"] for page in pages for document in page]
        assert sorted(listed) == sorted(mine), "each of the tenant's sessions once, and only the tenant's"
        opened = {document["timestamps"][0]["timestamp"] for page in pages for document in page}
        assert len(opened) == 1, "all opened at one virtual instant: the cursor orders the ties"
        assert listed == sorted(mine, reverse=True), "ties go by id, newest-first order kept"


async def test_V1_pages_of_jobs_stay_exact_while_new_jobs_come(autojump_clock: Clock) -> None:
    async with two_tenants() as (_, _, alice, _):
        first = [await submit(alice, backend="sim", params=job(100), tags=["batch-1"]) for _ in range(8)]
        page = (await alice.get("/jobs", params={"limit": 3, "tags": "batch-1"})).json()
        await trio.sleep(1)
        later = [await submit(alice, backend="sim", params=job(100), tags=["batch-1"]) for _ in range(4)]
        seen = [document["id"] for document in page["jobs"]]
        cursor = page["next"]
        while cursor is not None:
            page = (await alice.get("/jobs", params={"limit": 3, "tags": "batch-1", "cursor": cursor})).json()
            seen += [document["id"] for document in page["jobs"]]
            cursor = page["next"]
        assert sorted(seen) == sorted(first), "a page goes on where the last ended: newer jobs come first anew"
        assert not set(seen) & set(later)
        fresh = [d["id"] for p in await all_pages(alice, "/jobs", "jobs", tags="batch-1") for d in p]
        assert fresh[:4] == sorted(later, reverse=True) and len(fresh) == 12
        assert all(d["tags"] == ["batch-1"] for p in await all_pages(alice, "/jobs", "jobs") for d in p)


@pytest.mark.parametrize(
    ("path", "params", "words"),
    [
        ("/sessions", {"cursor": "not-a-cursor"}, "is not a cursor this server gave"),
        ("/sessions", {"state": "sleeping"}, "state='sleeping' is not a session state"),
        ("/sessions", {"created_after": "2026-01-01T00:00:00"}, "must be an aware datetime"),
        ("/jobs", {"created_before": "yesterday"}, "created_before='yesterday' is not an ISO-8601"),
        ("/jobs", {"status": "FINISHED"}, "status='FINISHED' is not a job status"),
        ("/jobs", {"limit": 0}, "limit"),
        ("/jobs", {"limit": 5000}, "limit"),
        ("/usage", {"since": "soon"}, "since='soon' is not an ISO-8601"),
    ],
)
async def test_V1_bad_filters_answer_422_saying_what_is_allowed(path: str, params: dict[str, Any], words: str) -> None:
    async with two_tenants() as (_, _, alice, _):
        response = await alice.get(path, params=params)
        assert response.status_code == 422, response.text
        assert words in response.json()["error"]["message"]


# -- E1: Server-Sent Events ----------------------------------------------------------------------


async def test_E1_a_sessions_stream_is_sse_with_ids_kinds_and_data_and_ends_with_it(autojump_clock: Clock) -> None:
    async with two_tenants() as (_, _, alice, _):
        session_id = await open_session(alice)
        async with alice.stream("GET", "/events", params={"session_id": session_id}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert "content-length" not in stream.headers
            async with SseReader(stream) as reader:
                first = await reader.take(1)
                job_id = await submit(alice, session_id=session_id, params=job(2))
                await alice.patch(f"/sessions/{session_id}", json={"accepting_jobs": False})
                rest = await reader.take()  # to its end: closed, and its job ended
        events = first + rest
        assert [e["event"] for e in events] == [
            "session.open",
            "job.queued",
            "session.active",
            "job.running",
            "job.done",
            "session.closed",
        ]
        assert all(e["event"] == e["data"]["kind"] and int(e["id"]) == e["data"]["seq"] for e in events)
        assert [int(e["id"]) for e in events] == sorted(int(e["id"]) for e in events)
        assert {e["data"]["job_id"] for e in events if e["event"].startswith("job.")} == {job_id}
        assert events[-1]["data"]["data"]["reason"] == "closed"
        assert dt.datetime.fromisoformat(events[0]["data"]["at"]).tzinfo is not None


async def test_E1_last_event_id_resumes_after_the_last_event_seen(autojump_clock: Clock) -> None:
    async with two_tenants() as (service, _, alice, _):
        session_id = await open_session(alice)
        async with alice.stream("GET", "/events", params={"session_id": session_id}) as stream:
            await submit(alice, session_id=session_id, params=job(2))
            seen = await events_of(stream, 3)  # then the client goes away
        assert [e["event"] for e in seen] == ["session.open", "job.queued", "session.active"]
        await trio.sleep(0.1)
        assert service.events_hub.subscriber_count() == 0
        await trio.sleep(5)  # meanwhile the job runs and ends, and the session closes
        await alice.patch(f"/sessions/{session_id}", json={"accepting_jobs": False})
        headers = {"last-event-id": seen[-1]["id"]}
        async with alice.stream("GET", "/events", params={"session_id": session_id}, headers=headers) as stream:
            resumed = await events_of(stream)
        assert [e["event"] for e in resumed] == ["job.running", "job.done", "session.closed"], "none lost, none twice"
        assert int(resumed[0]["id"]) > int(seen[-1]["id"])


async def test_E1_a_jobs_stream_starts_with_its_state_and_ends_with_its_end(autojump_clock: Clock) -> None:
    async with two_tenants() as (_, _, alice, _):
        job_id = await submit(alice, backend="q", params=job(3, fail="boom"))
        async with alice.stream("GET", "/events", params={"job_id": job_id}) as stream:
            events = await events_of(stream)
        assert [e["event"] for e in events] == ["job.running", "job.error"]
        assert events[-1]["data"]["data"]["reason"] == "backend_error"
        async with alice.stream("GET", "/events", params={"job_id": job_id}) as stream:
            again = await events_of(stream)
        assert [e["event"] for e in again] == ["job.error"], "an ended job's stream is its end"


async def test_E1_a_disconnect_closes_the_subscription_at_once(autojump_clock: Clock) -> None:
    async with two_tenants() as (service, _, alice, _):
        hub = service.events_hub
        async with alice.stream("GET", "/events") as stream:
            assert stream.status_code == 200
            await trio.sleep(0.1)
            assert hub.subscriber_count() == 1
        await trio.testing.wait_all_tasks_blocked()  # no time passes: the app hears http.disconnect
        assert hub.subscriber_count() == 0
        head = await alice.head("/events")
        assert head.status_code == 200 and head.content == b""
        assert hub.subscriber_count() == 0, "a HEAD opens no stream"


async def test_E1_an_idle_stream_sends_keepalive_comments(autojump_clock: Clock) -> None:
    async with (
        two_tenants() as (_, _, alice, _),
        alice.stream("GET", "/events") as stream,
        SseReader(stream) as reader,
    ):
        start = trio.current_time()
        assert await reader.lines(2) == ["retry: 1000", ""]
        assert await reader.lines(4) == [": keepalive", "", ": keepalive", ""]
        assert trio.current_time() - start == pytest.approx(30), "one comment every 15 s"


async def test_E1_a_stream_holds_no_in_flight_slot(autojump_clock: Clock) -> None:
    async with (
        two_tenants(ServerSettings(max_in_flight=1)) as (_, _, alice, _),
        alice.stream("GET", "/events") as stream,
    ):
        assert stream.status_code == 200
        assert (await alice.get("/backends")).status_code == 200, "the stream is not counted in flight"


async def test_E1_shutdown_ends_the_streams_and_refuses_new_ones(autojump_clock: Clock) -> None:
    async with two_tenants() as (service, app, alice, _):
        async with alice.stream("GET", "/events") as stream:
            app.begin_shutdown()
            assert await events_of(stream) == []  # it ended
        refused = await alice.get("/events")
        assert refused.status_code == 503 and "shutting down" in refused.json()["error"]["message"]
        assert service.events_hub.subscriber_count() == 0


# -- tenancy (V1, E1, U1, Q1, T1) ---------------------------------------------------------------


async def test_tenant_b_never_sees_tenant_as_sessions_jobs_events_or_usage(autojump_clock: Clock) -> None:
    async with two_tenants() as (_, _, alice, bob):
        async with bob.stream("GET", "/events") as bobs_stream:
            session_id = await open_session(alice)
            job_id = await submit(alice, session_id=session_id, params=job(2), tags=["secret"])
            await trio.sleep(3)
            await alice.patch(f"/sessions/{session_id}", json={"accepting_jobs": False})
            own = await submit(bob, backend="sim", params=job(1))
            seen_by_bob = await events_of(bobs_stream, 1)
        assert seen_by_bob[0]["data"]["job_id"] == own, "b's stream carried none of a's events"
        assert (await bob.get("/sessions")).json() == {"sessions": [], "next": None}
        assert [d["id"] for d in (await bob.get("/jobs")).json()["jobs"]] == [own]
        assert (await bob.get("/jobs", params={"tags": "secret"})).json()["jobs"] == []
        assert (await bob.get("/jobs", params={"session_id": session_id})).json()["jobs"] == []
        await trio.sleep(2)
        assert set((await bob.get("/usage")).json()["backends"]) == {"sim"}
        assert (await alice.get("/usage")).json()["backends"] == {"q": {"jobs": 1, "quantum_seconds": 2.0}}
        for path, params in [
            ("/events", {"session_id": session_id}),
            ("/events", {"job_id": job_id}),
            (f"/jobs/{job_id}/queue", {}),
        ]:
            assert (await bob.get(path, params=params)).status_code == 404, path
        assert (await bob.put(f"/jobs/{job_id}/tags", json={"tags": ["mine"]})).status_code == 404
        assert (await alice.get(f"/jobs/{job_id}")).json()["tags"] == ["secret"]


# -- U1, Q1, T1 ---------------------------------------------------------------------------------


async def test_Q1_T1_queue_position_queue_info_and_tags_over_http(autojump_clock: Clock) -> None:
    async with two_tenants() as (_, _, alice, _):
        running = await submit(alice, backend="q", params=job(10))
        waiting = [await submit(alice, backend="q", params=job(1), tags=["w"]) for _ in range(2)]
        await trio.sleep(1)
        assert (await alice.get("/backends/q/queue")).json() == {"priority": 0, "normal": 2}
        assert (await alice.get(f"/jobs/{running}/queue")).json() == {"position": None}
        assert [(await alice.get(f"/jobs/{j}/queue")).json()["position"] for j in waiting] == [0, 1]
        assert (await alice.get("/backends/nope/queue")).status_code == 404
        assert (await alice.put(f"/jobs/{running}/tags", json={"tags": ["long", "first"]})).status_code == 204
        assert (await alice.get(f"/jobs/{running}")).json()["tags"] == ["long", "first"]
        listed = (await alice.get("/jobs", params=[("tags", "long"), ("tags", "first")])).json()["jobs"]
        assert [d["id"] for d in listed] == [running], "repeated tags: all must be present"
        too_many = await alice.put(f"/jobs/{running}/tags", json={"tags": [str(n) for n in range(33)]})
        assert too_many.status_code == 422 and "at most 32" in too_many.json()["error"]["message"]
        refused = await alice.post("/jobs", json={"program_id": "p", "backend": "q", "tags": [""]})
        assert refused.status_code == 422, "tags are checked at submission too"
