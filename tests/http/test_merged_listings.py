"""Merged listings without nodes (SPEC V1): offset pages (`OffsetListing`) and cursor pages that sort
both ways, count and write their own cursor (`Listing`, as IBM's workloads use it).

Each fake node holds its whole listing and answers a window of it as a node's handler does: by
``(created, id)``, newest first unless ``sort`` says otherwise. What a merged page must equal is
the page of one node holding every node's items. The nodes themselves, in memory, are
``tests/ibm/test_ibm_cluster.py`` and ``tests/server/test_cluster_http.py``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from typing import Any

import httpx
import msgspec
import pytest
from attrs import define, field

from qmux._http import Listing, OffsetListing, Reply, Request, decode_cursor, encode_cursor

Item = dict[str, Any]
T0 = dt.datetime(2026, 11, 24, 13, tzinfo=dt.UTC)


def item(ident: str, second: int) -> Item:
    return {"id": ident, "created": (T0 + dt.timedelta(seconds=second)).isoformat().replace("+00:00", "Z")}


def in_order(items: list[Item], sort: str) -> list[Item]:
    return sorted(items, key=lambda i: (dt.datetime.fromisoformat(i["created"]), i["id"]), reverse=sort == "DESC")


class Query(msgspec.Struct):
    offset: int = 0
    limit: int = 10
    sort: str = "DESC"


@define
class Held:
    """A fan-out over nodes that each hold a whole listing and answer `offset`/`limit` windows of it."""

    mine: list[Item]
    theirs: dict[str, list[Item]]
    query: Query
    #: nodes that do not answer
    silent: set[str] = field(factory=set)
    #: every window asked: (node, offset, limit); this node is "here"
    asked: list[tuple[str, int, int]] = field(factory=list)
    left: list[str] = field(factory=list)

    @property
    def request(self) -> Request:
        return Request(tenant="a", params={}, query=self.query)

    @property
    def peers(self) -> Any:
        class Me:
            node = "here"

        return Me()

    def window(self, node: str, held: list[Item], offset: int, limit: int) -> dict[str, Any]:
        self.asked.append((node, offset, limit))
        page = in_order(held, self.query.sort)[offset : offset + limit]
        return {"jobs": page, "count": len(held), "limit": limit, "offset": offset}

    async def local(self, request: Request | None = None) -> Reply:
        query = (request or self.request).query
        return Reply.json(200, self.window("here", self.mine, query.offset, query.limit))

    async def others(self) -> Mapping[str, str]:
        return {name: f"http://{name}" for name in self.theirs}

    async def ask(
        self,
        node: str,
        url: str,
        *,
        headers: Mapping[str, str | None] | None = None,
        query: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response | None:
        if node in self.silent:
            self.left.append(node)
            return None
        given = {"offset": str(self.query.offset), "limit": str(self.query.limit), **(query or {})}
        return httpx.Response(200, json=self.window(node, self.theirs[node], int(given["offset"]), int(given["limit"])))

    def left_out(self, node: str, reason: str) -> None:
        self.left.append(node)


async def offset_page(held: Held, most: int) -> dict[str, Any]:
    reply = await OffsetListing("jobs", created=("created",), sort=("sort", "DESC"), most=most)(held)
    assert reply.status == 200
    page: dict[str, Any] = msgspec.json.decode(reply.body)
    return page


#: three nodes' items; some created at the same instant on two nodes (ties go by id)
HERE = [item(f"h{n}", n * 3) for n in range(7)]
B = [item(f"b{n}", n * 2) for n in range(9)]
C = [item("c0", 6), item("c1", 6), item("c2", 30)]


@pytest.mark.parametrize("sort", ["DESC", "ASC"])
async def test_V1_every_offset_page_is_the_page_of_one_node_holding_all_even_past_what_a_node_is_asked_at_once(
    sort: str,
) -> None:
    everything = in_order(HERE + B + C, sort)
    for offset, limit in itertools.product(range(len(everything) + 2), (1, 2, 5)):
        held = Held(list(HERE), {"b": list(B), "c": list(C)}, Query(offset, limit, sort))
        page = await offset_page(held, most=3)
        assert page["jobs"] == everything[offset : offset + limit], (offset, limit)
        assert (page["count"], page["offset"], page["limit"]) == (len(everything), offset, limit)
        assert all(0 < asked <= 3 for _, _, asked in held.asked), "never more than a node may be asked at once"
        for node, holds in (("here", HERE), ("b", B), ("c", C)):
            windows = [(start, size) for name, start, size in held.asked if name == node]
            starts = [start for start, _ in windows]
            assert starts == list(range(0, 3 * len(windows), 3)), "each window starts where the last ended"
            read = sum(size for _, size in windows)
            assert read <= max(offset + limit, 3), "no node is asked past offset + limit"
            assert windows[-1][1] > len(holds) - windows[-1][0] or read >= offset + limit, "asked on only while full"


async def test_V1_an_item_two_nodes_list_counts_once() -> None:
    moving = item("m", 4)
    held = Held([*HERE, moving], {"b": [moving, *B]}, Query(0, 50))
    page = await offset_page(held, most=1000)
    assert [i["id"] for i in page["jobs"]] == [i["id"] for i in in_order([*HERE, *B, moving], "DESC")]
    assert page["count"] == len(HERE) + len(B) + 1


async def test_V1_a_node_that_does_not_answer_is_left_out_of_an_offset_page() -> None:
    held = Held(list(HERE), {"b": list(B), "c": list(C)}, Query(2, 4), silent={"c"})
    page = await offset_page(held, most=1000)
    assert page["jobs"] == in_order(HERE + B, "DESC")[2:6] and page["count"] == len(HERE) + len(B)
    assert held.left == ["c"]


async def test_V1_the_only_node_answers_the_clients_own_page() -> None:
    held = Held(list(HERE), {}, Query(2, 3))
    page = await offset_page(held, most=1000)
    assert page["jobs"] == HERE[::-1][2:5] and held.asked == [("here", 2, 3)], "asked once, as the client asked"


# -- a cursor listing that sorts both ways, counts and writes its own cursor (IBM's workloads) --------


class CursorQuery(msgspec.Struct):
    limit: int
    sort: str
    next: str | None = None


@define
class Pages:
    """A fan-out over nodes that each hold a listing and answer a cursor page of it, as IBM's workloads do."""

    mine: list[Item]
    theirs: dict[str, list[Item]]
    query: CursorQuery

    @property
    def request(self) -> Request:
        return Request(tenant="a", params={}, query=self.query)

    @property
    def peers(self) -> Any:
        raise AssertionError("a listing asks no peer")

    def page(self, held: list[Item]) -> dict[str, Any]:
        newest_first = self.query.sort == "-createdAt"
        ordered = in_order(held, "DESC" if newest_first else "ASC")
        start = decode_cursor(self.query.next)
        if start is not None:
            ordered = [i for i in ordered if ((key(i) < start) if newest_first else (key(i) > start))]
        document: dict[str, Any] = {"workloads": ordered[: self.query.limit], "total_count": len(held)}
        if len(ordered) > self.query.limit:
            document["next"] = {"href": f"?next={encode_cursor(key(ordered[self.query.limit - 1]))}"}
        return document

    async def local(self, request: Request | None = None) -> Reply:
        return Reply.json(200, self.page(self.mine))

    async def others(self) -> Mapping[str, str]:
        return {name: f"http://{name}" for name in self.theirs}

    async def ask(
        self,
        node: str,
        url: str,
        *,
        headers: Mapping[str, str | None] | None = None,
        query: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response | None:
        assert query is None
        return httpx.Response(200, json=self.page(self.theirs[node]))

    def left_out(self, node: str, reason: str) -> None:
        raise AssertionError(f"{node} answers")


def key(i: Item) -> tuple[dt.datetime, str]:
    return dt.datetime.fromisoformat(i["created"]), i["id"]


@pytest.mark.parametrize("sort", ["-createdAt", "createdAt"])
async def test_V1_cursor_pages_sorted_either_way_are_walked_each_item_once_and_counted(sort: str) -> None:
    merge = Listing(
        "workloads",
        created=("created",),
        sort=("sort", "-createdAt"),
        counts=("total_count",),
        write_next=lambda query, cursor: {"href": f"?sort={query.sort}&next={cursor}"},
    )
    moving = item("m", 5)
    everything = in_order([*HERE, *B, *C, moving], "DESC" if sort == "-createdAt" else "ASC")
    walked: list[Item] = []
    cursor: str | None = None
    while True:
        pages = Pages([*HERE, moving], {"b": [*B, moving], "c": list(C)}, CursorQuery(4, sort, cursor))
        page: dict[str, Any] = msgspec.json.decode((await merge(pages)).body)
        # summed, less the repeats the merge sees: the item two nodes hold counts once on a page that
        # shows it (each of the two then listed it), at most once too many elsewhere
        if "m" in {i["id"] for i in page["workloads"]}:
            assert page["total_count"] == len(everything)
        else:
            assert page["total_count"] in (len(everything), len(everything) + 1)
        walked += page["workloads"]
        if "next" not in page:
            break
        href = httpx.URL(page["next"]["href"])
        assert href.params["sort"] == sort, "the page's own cursor writer"
        cursor = href.params["next"]
    assert walked == everything
