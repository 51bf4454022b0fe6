"""The pieces of forwarding that need no node: route clues, merged pages, merged event ids.

The nodes themselves, relaying and fanning out in memory, are ``tests/server/test_cluster_http.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import msgspec
import pytest
from attrs import define, field

from qmux._http import Listing, Reply, Request, decode_cursor, in_body, in_path, in_query, resume_id, resume_point

T0 = "2026-11-24T13:00:00.000000Z"
T1 = "2026-11-24T13:00:01.000000Z"
T2 = "2026-11-24T13:00:02.000000Z"


def test_a_clue_names_a_session_a_job_or_a_backend() -> None:
    assert in_path("session_id").kind == "session" and in_query("job_id").kind == "job"
    assert in_body("backend").kind == "backend"
    with pytest.raises(ValueError, match="'tenant' names no session, job or backend"):
        in_path("tenant")


def test_a_clue_reads_its_value_where_the_request_has_it() -> None:
    class Body(msgspec.Struct):
        backend: str | None = None

    request = Request(tenant="a", params={"session_id": "s"}, query=Body("q"), body=Body())
    assert in_path("session_id").value(request) == "s"
    assert in_query("backend").value(request) == "q"
    assert in_body("backend").value(request) is None, "a field left out names nothing"


@pytest.mark.parametrize(
    ("header", "seqs"),
    [
        (None, {}),
        ("41", {"here": 41}),
        ("a=41,b=7", {"a": 41, "b": 7}),
        ("a=41,b=seven,=3,c", {"a": 41}),
        ("nonsense", {}),
        ("a=²", {}),
    ],
)
def test_E1_a_merged_streams_last_event_id_says_each_nodes_seq(header: str | None, seqs: dict[str, int]) -> None:
    assert resume_point(header, "here") == seqs


def test_E1_a_merged_streams_id_reads_back_whatever_the_node_names() -> None:
    seqs = {"node,1": 3, "n=2": 4, "nœud %": 5}
    assert resume_point(resume_id(seqs), "here") == seqs
    assert resume_id(seqs).isascii()


@define
class Parts:
    """A fan-out whose parts are given: this node's page, and the others' pages by node."""

    mine: dict[str, Any]
    others_pages: dict[str, dict[str, Any]]
    limit: int
    left: list[str] = field(factory=list)

    @property
    def request(self) -> Request:
        class Query(msgspec.Struct):
            limit: int

        return Request(tenant="a", params={}, query=Query(self.limit))

    @property
    def peers(self) -> Any:
        raise AssertionError("a listing asks no peer")

    async def local(self, request: Request | None = None) -> Reply:
        return Reply.json(200, self.mine)

    async def others(self) -> Mapping[str, str]:
        return {name: f"http://{name}" for name in self.others_pages}

    async def ask(
        self,
        node: str,
        url: str,
        *,
        headers: Mapping[str, str | None] | None = None,
        query: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response | None:
        assert query is None, "a cursor listing asks each node the client's own request"
        return httpx.Response(200, json=self.others_pages[node])

    def left_out(self, node: str, reason: str) -> None:
        self.left.append(node)


def job_page(*items: tuple[str, str], more: bool = False) -> dict[str, Any]:
    return {"jobs": [{"id": ident, "created": created} for ident, created in items], "next": "x" if more else None}


async def merged(parts: Parts) -> dict[str, Any]:
    reply = await Listing("jobs", created=("created",))(parts)
    assert reply.status == 200
    page: dict[str, Any] = msgspec.json.decode(reply.body)
    return page


async def test_V1_a_merged_page_keeps_the_newest_of_all_nodes_ties_by_id() -> None:
    parts = Parts(
        job_page(("a1", T2), ("a0", T0)),
        {"b": job_page(("b9", T1), ("b1", T1)), "c": job_page(("c5", T2))},
        limit=3,
    )
    page = await merged(parts)
    assert [item["id"] for item in page["jobs"]] == ["c5", "a1", "b9"]
    created, ident = decode_cursor(page["next"]) or (None, None)
    assert ident == "b9" and created is not None and created.isoformat().startswith("2026-11-24T13:00:01")


async def test_V1_a_merged_page_has_a_next_while_any_node_has_more() -> None:
    exact = Parts(job_page(("a1", T2)), {"b": job_page(("b1", T1), more=True)}, limit=2)
    assert (await merged(exact))["next"] is not None, "b has more than it showed"
    last = Parts(job_page(("a1", T2)), {"b": job_page(("b1", T1))}, limit=2)
    assert (await merged(last))["next"] is None, "every node's last page: the merged one is the last"


async def test_V1_an_item_two_nodes_list_is_listed_once() -> None:
    moving = Parts(job_page(("j1", T1)), {"b": job_page(("j1", T1), ("b0", T0))}, limit=5)
    assert [item["id"] for item in (await merged(moving))["jobs"]] == ["j1", "b0"]
