"""IBM's listings and usage in a cluster (SPEC V1, U1 across nodes): any node shows the tenant's work on every node.

Three nodes in memory (`tests.server.cluster`), each serving IBM's Runtime API too, each running
one backend. Jobs are submitted through every node to every backend (each lands on its backend's
node), then listed through every node. What a merged answer must equal is computed from what
each node lists alone (asked as a node asks another: marked `FORWARDED_BY`, so it answers only
for itself): the page one node holding all the work would give. The unfiltered order is also
checked against the order the test submitted in, which no listing code computes.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
import trio
from trio.abc import Clock

from qmux._http import FORWARDED_BY, PARTIAL
from qmux.testing import job, qpu

from ..server.cluster import Cluster, cluster
from ..support.remote import OTHER_TOKEN
from .test_ibm_api import API, open_session, submit

THREE = {"a": [qpu("qa")], "b": [qpu("qb")], "c": [qpu("qc")]}
NODES = tuple(THREE)


def created_key(document: Mapping[str, Any]) -> tuple[dt.datetime, str]:
    return dt.datetime.fromisoformat(document["created"]), document["id"]


async def alone(c: Cluster, node: str, path: str, field: str, **query: Any) -> list[dict[str, Any]]:
    """Everything node `node` lists of its own (it is asked as another node asks it), every page walked."""
    async with c.client(node) as http:
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {**query, "limit": 1000 if field == "jobs" else 50}
        while True:
            response = await http.get(f"{API}{path}", params=params, headers={FORWARDED_BY: "the-test"})
            assert response.status_code == 200, response.text
            found += response.json()[field]
            if field == "jobs" or "next" not in response.json():
                return found
            params = dict(httpx.URL(response.json()["next"]["href"]).params.multi_items())


async def one_node_page(c: Cluster, *, offset: int, limit: int, sort: str, **filters: Any) -> tuple[list[Any], int]:
    """The page one node holding every node's jobs would give: the union, by (created, id), cut at offset."""
    union = [d for node in NODES for d in await alone(c, node, "/jobs", "jobs", sort=sort, **filters)]
    assert len({d["id"] for d in union}) == len(union), "each job is on one node"
    union.sort(key=created_key, reverse=sort == "DESC")
    return union[offset : offset + limit], len(union)


async def spread_jobs(c: Cluster) -> tuple[list[str], str, list[str]]:
    """Jobs of the tenant through every node to every backend, in a known order: on qa and qb they
    end, on qc the first hangs and the rest queue behind it; a session on qb; another tenant's jobs.
    The tenant's job ids in submission order, the session's id, the other tenant's job ids."""
    submitted: list[str] = []
    async with c.client("a") as a, c.client("b") as b, c.client("c") as cc:
        clients = itertools.cycle((a, b, cc))
        for number in range(12):
            backend = ("qa", "qb", "qc")[number % 3]
            params = job(hang=True) if number == 2 else job(1)
            tags = ["t", "even" if number % 2 == 0 else "odd"]
            submitted.append(await submit(next(clients), params, backend=backend, tags=tags))
        session_id = await open_session(cc, backend="qb")
        for _ in range(3):
            submitted.append(await submit(next(clients), job(1), session_id=session_id, tags=["t", "odd"]))
        async with c.client("c", OTHER_TOKEN) as other:
            theirs = [await submit(other, job(1), backend=backend) for backend in ("qa", "qb", "qc")]
    await trio.sleep(30)  # all but qc's have ended; qc's first runs on, the others wait behind it
    return submitted, session_id, theirs


async def test_V1_every_page_of_ibm_jobs_through_any_node_is_the_page_of_one_node_holding_all(
    autojump_clock: Clock,
) -> None:
    async with cluster(THREE, ibm=True) as c, c.client("a") as a, c.client("b") as b, c.client("c") as cc:
        submitted, session_id, _ = await spread_jobs(c)
        total = len(submitted)
        via = itertools.cycle((a, b, cc))

        async def page(**query: Any) -> dict[str, Any]:
            response = await next(via).get(f"{API}/jobs", params={"exclude_params": "true", **query})
            assert response.status_code == 200, response.text
            assert PARTIAL not in response.headers
            listed: dict[str, Any] = response.json()
            return listed

        newest = (await page(limit=total))["jobs"]
        assert [d["id"] for d in newest] == submitted[::-1], "newest first, across nodes, as submitted"
        oldest = (await page(limit=total, sort="ASC"))["jobs"]
        assert [d["id"] for d in oldest] == submitted

        filters: list[dict[str, Any]] = [
            {},
            {"backend": "qc"},
            {"pending": "true"},
            {"pending": "false"},
            {"tags": "even"},
            {"tags": ["t", "odd"]},  # a repeated parameter is sent on whole
            {"program": "script", "created_after": "2000-01-01T00:00:00Z"},
            {"session_id": session_id},
        ]
        for sort, query in itertools.product(("DESC", "ASC"), filters):
            _, matching = await one_node_page(c, offset=0, limit=0, sort=sort, **query)
            for offset, limit in ((0, 4), (3, 5), (matching // 2, 1), (matching - 1, 10), (matching, 3), (40, 2)):
                expected, count = await one_node_page(c, offset=offset, limit=limit, sort=sort, **query)
                found = await page(offset=offset, limit=limit, sort=sort, **query)
                assert found["jobs"] == expected, (sort, query, offset, limit)
                assert (found["count"], found["offset"], found["limit"]) == (count, offset, limit)
        pending = (await page(pending="true", limit=total))["jobs"]
        assert [d["id"] for d in pending] == [submitted[i] for i in (11, 8, 5, 2)], "qc's: one runs, three wait"


async def test_V1_each_node_is_asked_for_its_first_offset_plus_limit_marked_as_forwarded(
    autojump_clock: Clock,
) -> None:
    async with cluster(THREE, ibm=True) as c, c.client("b") as b:
        submitted, session_id, _ = await spread_jobs(c)
        c.wires.sent.clear()
        response = await b.get(f"{API}/jobs", params={"offset": 5, "limit": 4, "tags": ["t", "odd"], "sort": "ASC"})
        assert response.status_code == 200
        asked = sorted((sent.host.split(".")[0], sent.path) for sent in c.wires.sent)
        assert asked == [("a", f"{API}/jobs"), ("c", f"{API}/jobs")]
        for sent in c.wires.sent:
            assert sent.headers[FORWARDED_BY] == "b", "each node answers only its own part"
            assert (sent.params["offset"], sent.params["limit"]) == ("0", "9")
            assert sent.params.get_list("tags") == ["t", "odd"] and sent.params["sort"] == "ASC"
        c.wires.sent.clear()
        in_session = await b.get(f"{API}/jobs", params={"session_id": session_id})
        assert [d["id"] for d in in_session.json()["jobs"]] == submitted[12:][::-1]
        assert c.wires.sent == [], "b holds the session's backend: nobody else is asked"
        on_qc = await b.get(f"{API}/jobs", params={"backend": "qc"})
        assert [d["id"] for d in on_qc.json()["jobs"]] == [submitted[i] for i in (11, 8, 5, 2)]
        assert [(s.host.split(".")[0], s.params["backend"]) for s in c.wires.sent] == [("c", "qc")], "relayed"


async def test_V1_a_tenant_sees_only_its_own_jobs_on_every_node(autojump_clock: Clock) -> None:
    async with cluster(THREE, ibm=True) as c, c.client("a", OTHER_TOKEN) as other, c.client("b") as mine:
        submitted, _, theirs = await spread_jobs(c)
        listed = (await other.get(f"{API}/jobs", params={"sort": "ASC"})).json()
        assert ([d["id"] for d in listed["jobs"]], listed["count"]) == (theirs, 3)
        everything = (await mine.get(f"{API}/jobs", params={"limit": 100})).json()
        assert everything["count"] == len(submitted) and not set(theirs) & {d["id"] for d in everything["jobs"]}


@pytest.mark.parametrize("sort", ["-createdAt", "createdAt"])
async def test_V1_ibm_workloads_of_every_node_walked_by_next_come_each_once_in_order(
    autojump_clock: Clock, sort: str
) -> None:
    async with cluster(THREE, ibm=True) as c, c.client("a") as a, c.client("b") as b, c.client("c") as cc:
        for via, backend in itertools.product((a, b, cc), ("qa", "qb", "qc")):
            await submit(via, job(1), backend=backend)
            await open_session(via, backend=backend, mode="batch")
            await trio.sleep(0.5)
            await submit(via, job(1), backend=backend)  # at the same virtual instant as the next: ties go by id
        async with c.client("c", OTHER_TOKEN) as other:
            await open_session(other, backend="qa")
        union = [w for node in NODES for w in await alone(c, node, "/workloads", "workloads", sort=sort)]
        expected = [w["id"] for w in sorted(union, key=created_key, reverse=sort == "-createdAt")]
        assert len(expected) == 27 == len(set(expected))

        walked: list[str] = []
        response = await a.get(f"{API}/workloads", params={"limit": 4, "sort": sort})
        for via in itertools.cycle((b, cc, a)):  # the next page of any node's cursor, from any node
            assert response.status_code == 200 and PARTIAL not in response.headers
            page = response.json()
            assert page["total_count"] == 27 and len(page["workloads"]) <= 4
            walked += [w["id"] for w in page["workloads"]]
            if "next" not in page:
                break
            response = await via.get(f"{API}/workloads{page['next']['href']}")
        assert walked == expected, "each once, in order"
        batches = (await b.get(f"{API}/workloads", params={"mode": "batch", "sort": sort, "limit": 50})).json()
        batch_ids = {w["id"] for w in union if w["mode"] == "batch"}
        assert [w["id"] for w in batches["workloads"]] == [i for i in expected if i in batch_ids]
        assert batches["total_count"] == 9 and "next" not in batches


async def test_U1_ibm_usage_is_the_sum_of_every_nodes_jobs(autojump_clock: Clock) -> None:
    async with cluster(THREE, ibm=True) as c, c.client("a") as a, c.client("c") as cc:
        seconds = {"qa": 2.0, "qb": 3.0, "qc": 4.0}
        for via, (backend, length) in zip(itertools.cycle((a, cc)), [*seconds.items(), *seconds.items()]):
            await submit(via, job(length), backend=backend)
        async with c.client("b", OTHER_TOKEN) as other:
            await submit(other, job(7), backend="qa")
            await trio.sleep(60)
            assert (await other.get(f"{API}/instances/usage")).json()["usage_consumed_seconds"] == pytest.approx(7)
        each = [(await alone_usage(c, node))["usage_consumed_seconds"] for node in NODES]
        assert each == pytest.approx([4, 6, 8]), "each node counts the jobs it ran"
        for via in (a, cc):
            usage = (await via.get(f"{API}/instances/usage")).json()
            assert usage["usage_consumed_seconds"] == pytest.approx(18) and usage["usage_limit_reached"] is False


async def alone_usage(c: Cluster, node: str) -> dict[str, Any]:
    async with c.client(node) as http:
        usage: dict[str, Any] = (await http.get(f"{API}/instances/usage", headers={FORWARDED_BY: "the-test"})).json()
        return usage


async def test_V1_U1_a_node_that_does_not_answer_is_left_out_and_every_answer_says_so(autojump_clock: Clock) -> None:
    async with cluster(THREE, ibm=True) as c, c.client("a") as a:
        submitted, _, _ = await spread_jobs(c)
        on_c = {d["id"] for d in await alone(c, "c", "/jobs", "jobs")}
        answered = [i for i in submitted[::-1] if i not in on_c]
        c.wires.silent.add("c.qmux.test")
        for path, params in (("/jobs", {"limit": 50}), ("/workloads", {}), ("/instances/usage", {})):
            start = trio.current_time()
            response = await a.get(f"{API}{path}", params=params)
            assert response.status_code == 200 and response.headers[PARTIAL] == "c", path
            assert trio.current_time() - start == pytest.approx(5), "bounded: a waits FAN_OUT_SECONDS for c"
        listed = (await a.get(f"{API}/jobs", params={"limit": 3, "offset": 2})).json()
        assert [d["id"] for d in listed["jobs"]] == answered[2:5] and listed["count"] == len(answered)
