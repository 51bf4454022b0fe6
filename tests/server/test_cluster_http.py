"""Any node answers any request (issue 15): what a node does not hold, the node that does answers,
relayed; listings, usage and events are every node's, merged (SPEC V1, U1, E1 across nodes).

Each test runs two or three nodes in memory (`cluster`): each its own service over its own
backends and its own app, wired to the others by a transport that routes base URLs to apps, and
told who holds what by a `FakePeers` that reads it off the nodes, as the node runtime reads it off
the lease table.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
import trio
from attrs import define
from trio.abc import Clock

import qmux
from qmux._http import FORWARDED_BY, PARTIAL, resume_point
from qmux._http._merged_events import MEMBERSHIP_SECONDS
from qmux._http._relay import GRACE_SECONDS
from qmux.server import ServerSettings, create_app
from qmux.testing import job, qpu

from ..support.remote import OTHER_TOKEN, TENANTS, TOKEN
from .cluster import LEASE, Cluster, cluster, url_of
from .streaming import SseReader, events_of
from .test_server_api import open_session, submit

UNKNOWN_ID = "0123456789abcdef0123"
THREE = {"a": [qpu("qa")], "b": [qpu("qb")], "c": [qpu("qc")]}


def node_to_node(c: Cluster) -> list[tuple[str, str, str]]:
    """The requests one node sent another: (host's node, method, path)."""
    return [(sent.host.split(".")[0], sent.method, sent.path) for sent in c.wires.sent]


async def pages(client: httpx.AsyncClient, path: str, field: str, **params: Any) -> list[list[dict[str, Any]]]:
    found: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        response = await client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        assert PARTIAL not in response.headers
        found.append(response.json()[field])
        cursor = response.json()["next"]
        if cursor is None:
            return found


# -- one owner: relayed ------------------------------------------------------------------------------


async def test_S1_a_session_opened_through_any_node_lives_on_its_backends_owner(autojump_clock: Clock) -> None:
    async with cluster(THREE) as c, c.client("a") as a, c.client("b") as b:
        session = await open_session(a, backend="qb")
        session_id = session["id"]
        assert c.nodes["b"].service.session_owner(session_id) == "a", "b runs it, for tenant a"
        assert c.nodes["a"].service.session_owner(session_id) is None
        via_a, via_b = await a.get(f"/sessions/{session_id}"), await b.get(f"/sessions/{session_id}")
        assert via_a.status_code == 200 and via_a.json() == via_b.json()
        assert via_a.json()["id"] == session_id and via_a.json()["backend_name"] == "qb"
        assert via_a.headers["qmux-pending-jobs"] == '{"qb":0}', "the owner's own headers come back"
        assert (await a.patch(f"/sessions/{session_id}", json={"accepting_jobs": False})).status_code == 204
        assert (await b.get(f"/sessions/{session_id}")).json()["state"] == "closed"
        assert (await a.delete(f"/sessions/{session_id}/close")).status_code == 204
        assert node_to_node(c) == [
            ("b", "POST", "/sessions"),
            ("b", "GET", f"/sessions/{session_id}"),
            ("b", "PATCH", f"/sessions/{session_id}"),
            ("b", "DELETE", f"/sessions/{session_id}/close"),
        ]
        for sent in c.wires.sent:
            assert sent.headers[FORWARDED_BY] == "a"
            assert sent.headers["authorization"] == f"Bearer {TOKEN}", "the client's credential goes with it"


async def test_J1_a_job_submitted_through_any_node_runs_on_its_backends_owner(autojump_clock: Clock) -> None:
    async with cluster(THREE) as c, c.client("a") as a, c.client("c") as via_c:
        document = await submit(a, backend="qc", params=job(5, value=42), tags=["x"])
        job_id = document["id"]
        assert document["backend"] == "qc" and c.nodes["c"].service.job_owner(job_id) == "a"
        start = trio.current_time()
        result = await a.get(f"/jobs/{job_id}/results", params={"wait": 20})
        assert result.status_code == 200 and result.json() == 42
        assert trio.current_time() - start == pytest.approx(5), "the owner held the long poll until the job ended"
        assert (await a.get(f"/jobs/{job_id}/metrics")).json()["usage"]["quantum_seconds"] == 5
        assert (await a.put(f"/jobs/{job_id}/tags", json={"tags": ["y"]})).status_code == 204
        assert (await via_c.get(f"/jobs/{job_id}")).json()["tags"] == ["y"]
        assert (await a.get(f"/jobs/{job_id}")).json() == (await via_c.get(f"/jobs/{job_id}")).json()

        session_id = (await open_session(a, backend="qb"))["id"]
        in_session = await submit(a, session_id=session_id, params=job(1))
        assert in_session["session_id"] == session_id
        assert c.nodes["b"].service.job_owner(in_session["id"]) == "a", "a session's jobs go where it is"

        hanging = await submit(a, backend="qc", params=job(hang=True))
        assert (await a.post(f"/jobs/{hanging['id']}/cancel")).status_code == 204
        assert (await via_c.get(f"/jobs/{hanging['id']}")).json()["state"]["status"] == "Cancelled"


async def test_Q1_a_backends_status_and_queue_are_its_owners(autojump_clock: Clock) -> None:
    async with cluster(THREE) as c, c.client("a") as a, c.client("b") as b:
        for _ in range(3):
            await submit(b, backend="qb", params=job(10))
        for path in ("/backends/qb/status", "/backends/qb/queue"):
            via_a = await a.get(path)
            assert via_a.status_code == 200 and via_a.json() == (await b.get(path)).json()
        assert (await a.get("/backends/qb/status")).json()["length_queue"] == 2
        assert (await a.get("/backends/nowhere/status")).json()["error"]["code"] == "backend_not_found"
        assert ("b", "GET", "/backends/nowhere/status") not in node_to_node(c), "nobody holds it: a answers"


async def test_what_no_node_holds_is_answered_404_where_it_is_asked() -> None:
    async with cluster(THREE) as c, c.client("a") as a:
        for path in (f"/sessions/{UNKNOWN_ID}", f"/jobs/{UNKNOWN_ID}"):
            response = await a.get(path)
            assert response.status_code == 404, path
        assert (await a.post("/jobs", json={"program_id": "p", "session_id": UNKNOWN_ID})).status_code == 404
        assert c.wires.sent == []
        assert ("a", "session", UNKNOWN_ID) in c.asked and ("a", "job", UNKNOWN_ID) in c.asked


async def test_what_a_node_holds_it_answers_without_asking_anyone(autojump_clock: Clock) -> None:
    async with cluster(THREE) as c, c.client("a") as a:
        session_id = (await open_session(a, backend="qa"))["id"]
        job_id = (await submit(a, session_id=session_id, params=job(1)))["id"]
        for path in (f"/sessions/{session_id}", f"/jobs/{job_id}", "/backends/qa/queue"):
            assert (await a.get(path)).status_code == 200
        assert c.asked == [] and c.wires.sent == []


@define
class Liar:
    """Peers that say the other node holds everything (a stale view of the lease table)."""

    node: str
    other: str
    lease: float = LEASE

    async def owner_of_backend(self, backend: str) -> str | None:
        return url_of(self.other)

    async def owner_of_session(self, session_id: str) -> str | None:
        return url_of(self.other)

    async def owner_of_job(self, job_id: str) -> str | None:
        return url_of(self.other)

    async def others(self) -> dict[str, str]:
        return {self.other: url_of(self.other)}


async def test_a_forwarded_request_is_answered_where_it_arrives_never_sent_on() -> None:
    async with cluster({"a": [qpu("qa")], "b": [qpu("qb")]}) as c, c.client("a") as a:
        for me, other in (("a", "b"), ("b", "a")):
            relay = c.nodes[me].app.relay
            assert relay is not None
            relay.peers = Liar(me, other)
        response = await a.get(f"/sessions/{UNKNOWN_ID}")
        assert response.status_code == 404 and response.json()["error"]["code"] == "session_not_found"
        assert node_to_node(c) == [("b", "GET", f"/sessions/{UNKNOWN_ID}")], "once, and b answered its own 404"
        marked = await a.get(f"/jobs/{UNKNOWN_ID}", headers={FORWARDED_BY: "someone"})
        assert marked.status_code == 404 and len(c.wires.sent) == 1, "a marked request is answered here"


async def test_a_request_that_fails_authentication_is_never_forwarded() -> None:
    async with cluster(THREE) as c, c.client("a", token="not-a-token") as stranger, c.client("a", None) as anonymous:
        for client in (stranger, anonymous):
            assert (await client.post("/sessions", json={"backend": "qb"})).status_code == 401
            assert (await client.get("/sessions")).status_code == 401
        assert c.wires.sent == [] and c.asked == []


async def test_an_unreachable_owner_answers_503_with_retry_after_a_lease(autojump_clock: Clock) -> None:
    async with cluster(THREE) as c, c.client("a") as a:
        session_id = (await open_session(a, backend="qb"))["id"]
        c.wires.down.add("b.qmux.test")
        for response in (
            await a.get(f"/sessions/{session_id}"),
            await a.post("/sessions", json={"backend": "qb"}),
            await a.post("/jobs", json={"program_id": "p", "session_id": session_id}),
        ):
            assert response.status_code == 503
            assert response.headers["retry-after"] == str(int(LEASE))
            error = response.json()["error"]
            assert error["code"] == "node_unreachable" and error["type"] == "BackendUnavailableError"
            assert url_of("b") in error["message"] and "lease" in error["message"]


async def test_an_owner_that_does_not_answer_in_time_answers_504(autojump_clock: Clock) -> None:
    server = ServerSettings(long_poll=5)
    async with cluster(THREE, server=server) as c, c.client("a") as a:
        job_id = (await submit(a, backend="qb", params=job(1)))["id"]
        c.wires.silent.add("b.qmux.test")
        start = trio.current_time()
        response = await a.get(f"/jobs/{job_id}/results", params={"wait": 5})
        assert response.status_code == 504 and response.json()["error"]["code"] == "node_timeout"
        assert "may have taken effect" in response.json()["error"]["message"]
        assert trio.current_time() - start == pytest.approx(5 + GRACE_SECONDS), "the long-poll limit, and the grace"


async def test_a_client_that_leaves_a_relayed_long_poll_lets_the_owner_go(autojump_clock: Clock) -> None:
    async with cluster(THREE) as c, c.client("a") as a:
        job_id = (await submit(a, backend="qb", params=job(hang=True)))["id"]
        with trio.move_on_after(2):
            await a.get(f"/jobs/{job_id}/results", params={"wait": 20})
        await trio.sleep(0.1)
        assert c.nodes["b"].app.admission.total == 0, "the owner's long poll ended with the client"
        assert c.nodes["a"].app.admission.total == 0


async def test_qmux_connect_to_any_node_uses_every_nodes_backends(autojump_clock: Clock) -> None:
    from qmux._remote._client import connect

    async with cluster(THREE) as c:
        transport = httpx.ASGITransport(app=c.nodes["a"].app)
        async with connect(url_of("a"), token=TOKEN, transport=transport) as remote:
            assert sorted(handle.name for handle in remote.backends()) == ["qa", "qb", "qc"]
            async with qmux.Session(remote, backend="qc") as session:
                done = await session.run("script", job(3, value=7))
                assert await done.result() == 7
            assert c.nodes["c"].service.job_owner(done.job_id) == "a"


# -- every node: merged ------------------------------------------------------------------------------


def newest_first(documents: list[dict[str, Any]], created: Any) -> list[str]:
    keyed = sorted(documents, key=lambda d: (dt.datetime.fromisoformat(created(d)), d["id"]), reverse=True)
    return [d["id"] for d in keyed]


async def test_V1_sessions_of_every_node_list_newest_first_a_page_at_a_time(autojump_clock: Clock) -> None:
    async with cluster(THREE) as c, c.client("a") as a, c.client("b") as b, c.client("c") as cc:
        opened: list[dict[str, Any]] = []
        for _ in range(4):
            for client in (a, b, cc):
                for backend in ("qa", "qb", "qc"):
                    opened.append(await open_session(client, backend=backend))
            await trio.sleep(1)
        async with c.client("b", OTHER_TOKEN) as other_tenant:
            await open_session(other_tenant, backend="qc")
        expected = newest_first(opened, lambda d: d["timestamps"][0]["timestamp"])
        found = await pages(a, "/sessions", "sessions", limit=7)
        assert [len(page) for page in found] == [7, 7, 7, 7, 7, 1]
        assert [d["id"] for page in found for d in page] == expected, "each once, newest first, only the tenant's"
        # a page's cursor is every node's: the next page may be asked of any node
        first = (await a.get("/sessions", params={"limit": 10})).json()
        second = (await b.get("/sessions", params={"limit": 10, "cursor": first["next"]})).json()
        third = (await cc.get("/sessions", params={"limit": 20, "cursor": second["next"]})).json()
        assert [d["id"] for d in first["sessions"] + second["sessions"] + third["sessions"]] == expected
        assert third["next"] is None
        on_b = (await a.get("/sessions", params={"backend": "qb"})).json()["sessions"]
        assert [d["id"] for d in on_b] == [i for i in expected if c.nodes["b"].service.session_owner(i)]


async def test_V1_jobs_of_every_node_list_newest_first_with_filters(autojump_clock: Clock) -> None:
    async with cluster(THREE) as c, c.client("a") as a, c.client("c") as cc:
        submitted: list[dict[str, Any]] = []
        for round_ in range(3):
            for backend in ("qa", "qb", "qc"):
                submitted.append(await submit(cc, backend=backend, params=job(1), tags=[f"round-{round_}"]))
            await trio.sleep(0.5)
        session_id = (await open_session(a, backend="qb"))["id"]
        in_session = await submit(a, session_id=session_id, params=job(1))
        expected = newest_first([*submitted, in_session], lambda d: d["created"])
        found = await pages(a, "/jobs", "jobs", limit=4)
        assert [len(page) for page in found] == [4, 4, 2]
        assert [d["id"] for page in found for d in page] == expected
        tagged = (await a.get("/jobs", params={"tags": "round-1"})).json()["jobs"]
        assert [d["id"] for d in tagged] == newest_first(submitted[3:6], lambda d: d["created"])
        assert [d["id"] for d in (await cc.get("/jobs", params={"session_id": session_id})).json()["jobs"]] == [
            in_session["id"]
        ]
        on_qa = (await cc.get("/jobs", params={"backend": "qa"})).json()["jobs"]
        assert {d["backend"] for d in on_qa} == {"qa"} and len(on_qa) == 3


async def test_V1_a_node_that_does_not_answer_is_left_out_and_the_listing_says_so(autojump_clock: Clock) -> None:
    async with cluster(THREE) as c, c.client("a") as a:
        mine = (await open_session(a, backend="qa"))["id"]
        on_b = (await open_session(a, backend="qb"))["id"]
        await open_session(a, backend="qc")
        c.wires.silent.add("c.qmux.test")
        start = trio.current_time()
        response = await a.get("/sessions")
        assert response.status_code == 200 and response.headers[PARTIAL] == "c"
        assert trio.current_time() - start == pytest.approx(5), "bounded: a waits FAN_OUT_SECONDS for c"
        assert sorted(d["id"] for d in response.json()["sessions"]) == sorted([mine, on_b])
        c.wires.silent.clear()
        c.wires.down.add("b.qmux.test")
        partial = await a.get("/usage")
        assert partial.status_code == 200 and partial.headers[PARTIAL] == "b"


async def test_U1_usage_is_summed_over_the_nodes_and_backends_are_listed_once_by_their_owner(
    autojump_clock: Clock,
) -> None:
    # "sim" runs on a and on c, c holds it now (its jobs ran on a before it moved)
    nodes = {
        "a": [qpu("qa"), qpu("sim", simulator=True, concurrency=4, num_qubits=5)],
        "b": [qpu("qb")],
        "c": [qpu("sim", simulator=True, concurrency=4, num_qubits=7)],
    }
    async with cluster(nodes, owners={"sim": "c"}) as c, c.client("a") as a, c.client("b") as b:
        await submit(a, backend="sim", params=job(2))  # a runs one of its own
        await submit(b, backend="sim", params=job(3))  # b sends it to the holder, c
        await submit(b, backend="qb", params=job(4))
        await trio.sleep(5)
        usage = (await b.get("/usage")).json()["backends"]
        assert usage == {
            "sim": {"jobs": 2, "quantum_seconds": 5.0},
            "qb": {"jobs": 1, "quantum_seconds": 4.0},
        }
        devices = (await b.get("/backends")).json()["devices"]
        assert [d["name"] for d in devices] == ["qb", "qa", "sim"], "this node's first, then each once"
        assert next(d for d in devices if d["name"] == "sim")["qubits"] == 7, "the holder's entry"


# -- E1: one stream of every node's events -------------------------------------------------------------


async def test_E1_every_nodes_events_come_in_one_stream_whose_ids_resume_it(autojump_clock: Clock) -> None:
    async with cluster(THREE) as c, c.client("a") as a, c.client("b") as b, c.client("c") as cc:
        async with a.stream("GET", "/events") as stream, SseReader(stream) as reader:
            assert stream.status_code == 200 and PARTIAL not in stream.headers
            assert await reader.lines(2) == ["retry: 1000", ""]
            begun = (await reader.lines(2))[0].removeprefix("id: ")
            assert set(resume_point(begun, "a")) == {"a", "b", "c"}, "the client's place in every node's stream"
            on_b = (await open_session(b, backend="qb"))["id"]
            seen = await reader.take(1)
            on_c = (await open_session(cc, backend="qc"))["id"]
            on_a = (await open_session(a, backend="qa"))["id"]
            seen += await reader.take(2)
        assert [(e["event"], e["data"]["session_id"]) for e in seen] == [
            ("session.open", on_b),
            ("session.open", on_c),
            ("session.open", on_a),
        ]
        ids = [resume_point(e["id"], "a") for e in seen]
        assert [ids[0]["b"], ids[1]["c"], ids[2]["a"]] == [e["data"]["seq"] for e in seen]
        assert ids[2]["b"] == seen[0]["data"]["seq"], "each id says where the stream is in every node's"

        # the client kept only the first event's id; meanwhile a job runs in b's session; it comes
        # back, to node b, with that id
        await submit(b, session_id=on_b, params=job(1))
        await trio.sleep(3)
        resume = {"last-event-id": seen[0]["id"]}
        async with b.stream("GET", "/events", headers=resume) as stream, SseReader(stream) as reader:
            resumed = await reader.take(6)
            with trio.move_on_after(1):
                resumed += await reader.take(1)
        kinds = [(e["event"], e["data"]["session_id"]) for e in resumed]
        assert sorted(kinds) == sorted(
            [
                ("session.open", on_c),
                ("session.open", on_a),
                ("job.queued", on_b),
                ("session.active", on_b),
                ("job.running", on_b),
                ("job.done", on_b),
            ]
        ), "what came after that event, from every node, once"
        assert [kind for kind, session in kinds if session == on_b] == [
            "job.queued",
            "session.active",
            "job.running",
            "job.done",
        ], "each node's in its order"


async def test_E1_a_stream_of_a_session_elsewhere_is_relayed_to_its_end(autojump_clock: Clock) -> None:
    async with cluster(THREE) as c, c.client("a") as a:
        session_id = (await open_session(a, backend="qb"))["id"]
        async with a.stream("GET", "/events", params={"session_id": session_id}) as stream:
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
            await submit(a, session_id=session_id, params=job(2))
            await a.patch(f"/sessions/{session_id}", json={"accepting_jobs": False})
            events = await events_of(stream)
        assert [e["event"] for e in events] == [
            "session.open",
            "job.queued",
            "session.active",
            "job.running",
            "job.done",
            "session.closed",
        ]
        assert all(int(e["id"]) == e["data"]["seq"] for e in events), "the owner's own ids, as it sent them"
        await trio.sleep(0.1)
        assert c.nodes["b"].service.events_hub.subscriber_count() == 0


async def test_E1_a_merged_stream_follows_a_node_that_joins_and_lets_one_that_leaves_go(
    autojump_clock: Clock,
) -> None:
    async with cluster(THREE) as c, c.client("a") as a, c.client("c") as cc:
        hub_b, hub_c = (c.nodes[name].service.events_hub for name in "bc")
        c.gone.add("c")  # c is not live yet when the stream begins
        async with a.stream("GET", "/events") as stream, SseReader(stream) as reader:
            await trio.sleep(0.1)
            assert (hub_b.subscriber_count(), hub_c.subscriber_count()) == (1, 0)
            c.gone.clear()
            await trio.sleep(MEMBERSHIP_SECONDS)
            assert hub_c.subscriber_count() == 1, "c is followed once it is seen live"
            on_c = (await open_session(cc, backend="qc"))["id"]
            assert [e["data"]["session_id"] for e in await reader.take(1)] == [on_c]

            c.gone.add("b")  # b's lease expired: it is let go, and not asked again
            c.wires.cut("b.qmux.test")
            await trio.sleep(10)
            assert hub_b.subscriber_count() == 0
            assert node_to_node(c).count(("b", "GET", "/events")) == 1, "b was not asked again"
            again = (await open_session(cc, backend="qc"))["id"]
            assert [e["data"]["session_id"] for e in await reader.take(1)] == [again], "the others go on"
        await trio.sleep(0.1)
        assert hub_c.subscriber_count() == 0, "the client left: every node lets go"


async def test_E1_a_node_whose_stream_breaks_is_resumed_after_its_last_event(autojump_clock: Clock) -> None:
    async with cluster({"a": [qpu("qa")], "b": [qpu("qb")]}) as c, c.client("a") as a, c.client("b") as b:
        async with a.stream("GET", "/events") as stream, SseReader(stream) as reader:
            first = (await open_session(b, backend="qb"))["id"]
            assert [e["data"]["session_id"] for e in await reader.take(1)] == [first]
            c.wires.cut("b.qmux.test")
            second = (await open_session(b, backend="qb"))["id"]  # while a waits to ask b again
            assert [e["data"]["session_id"] for e in await reader.take(1)] == [second], "replayed, not lost"
            third = (await open_session(b, backend="qb"))["id"]
            assert [e["data"]["session_id"] for e in await reader.take(1)] == [third], "and followed on"
        assert [(node, path) for node, _, path in node_to_node(c)].count(("b", "/events")) == 2


# -- one node: nothing changes -------------------------------------------------------------------------


async def test_an_app_without_peers_answers_everything_itself(autojump_clock: Clock) -> None:
    async with qmux.open_service([qpu("q")]) as service:
        app = create_app(service, TENANTS)
        assert app.relay is None
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://qmux.test",
            headers={"authorization": f"Bearer {TOKEN}"},
        ) as client:
            assert (await client.get(f"/sessions/{UNKNOWN_ID}")).status_code == 404
            assert PARTIAL not in (await client.get("/sessions")).headers
            assert (await client.post("/sessions", json={"backend": "q"})).status_code == 201
