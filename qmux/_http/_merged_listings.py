"""Listings merged from every node's part (SPEC V1): paged by cursor (`Listing`) or by offset (`OffsetListing`).

Both order items as each node's handler does, by ``(created, id)`` (`Key`): newest first, unless
the request's sort parameter says otherwise (`Ordered.sort`). The merge sorts the union of the
parts by that same key, each id once: a backend may move between nodes while a listing is read,
and its items then come from both. A count of every matching item (``count``, ``total_count``)
is the sum of the nodes' counts, less the items the merge saw listed twice.

- `Listing`, paged by a cursor: each node is asked the client's request as it is (``limit``
  items after the client's cursor, in the listing's order); the merge keeps the first ``limit``
  of them all, and its cursor is the key of the last one kept. The global page is exact: each of
  its items is among its own node's first ``limit`` after the cursor. Cursors stay opaque and
  node-free, so the next page may be asked of any node.
- `OffsetListing`, paged by ``offset`` and ``limit`` (IBM's ``GET /jobs``): a node can only say
  which are its own first k, so each is asked for its first ``offset + limit`` (from offset 0)
  and the merge cuts ``[offset:offset + limit]`` from their union: the page one node holding all
  the work would give. A node is asked in requests of at most the route's largest ``limit``
  (`OffsetListing.most`), the next one only once the last was full, so any offset is served, as
  one node serves it; what it costs grows with the offset (each node sends up to ``offset +
  limit`` items), as one node's grows with what it holds. A node's later requests are read after
  its first, so an item created or forgotten in between shifts its later items by one, as it
  shifts a client's own pages.

A node left out (no 200 in time) is missing from the answer, which says so in its `PARTIAL`
header; an answer this node does not give with 200 (a refusal of the request's input) is the
answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, final

from attrs import field, frozen

from ._fanout import answer, ask_each, decode, gather
from ._forwarding import FanOut
from ._listing import Key, encode_cursor
from ._messages import Reply

__all__ = ["Listing", "OffsetListing", "Ordered"]

#: an item of a listing, as a node's page holds it
Item = dict[str, Any]


@frozen
class Ordered:
    """What both merged listings share: where a page holds its items, and the order they are in."""

    #: the field of the page that holds its items (``sessions``, ``jobs``, ``workloads``)
    items: str
    #: where an item says when it was created: keys and indexes into its document
    created: tuple[str | int, ...]
    #: the query parameter that says which way the listing runs, and its value for newest first
    #: (``("sort", "DESC")``); ``None``: always newest first, as the core lists
    sort: tuple[str, str] | None = field(default=None, kw_only=True)

    def key(self, document: Mapping[str, Any]) -> Key:
        """An item's place in the listing: when it was created, then its id."""
        found: Any = document
        for step in self.created:
            found = found[step]
        return dt.datetime.fromisoformat(found), str(document["id"])

    def newest_first(self, query: Any) -> bool:
        """Whether the request (its decoded `query`) lists newest first."""
        if self.sort is None:
            return True
        name, newest = self.sort
        return bool(getattr(query, name) == newest)

    def in_order(self, lists: Iterable[Sequence[Item]], *, newest_first: bool) -> tuple[list[Item], int]:
        """The items of `lists`, each id once, in the listing's order; and how many were left out as repeats."""
        seen: set[str] = set()
        items: list[Item] = []
        repeats = 0
        for listed in lists:
            for item in listed:
                if item["id"] in seen:
                    repeats += 1
                else:
                    seen.add(item["id"])
                    items.append(item)
        items.sort(key=self.key, reverse=newest_first)
        return items, repeats


@final
@frozen
class Listing(Ordered):
    """A page merged from each node's page of the same listing, paged by cursor (see the module's doc)."""

    #: the field of the page that holds the next page's cursor (absent or null after the last)
    next: str = field(default="next", kw_only=True)
    #: the query parameter that says how many items a page holds
    limit: str = field(default="limit", kw_only=True)
    #: fields of the page that count every matching item (``total_count``): summed over the nodes
    counts: tuple[str, ...] = field(default=(), kw_only=True)
    #: how a page writes the next page's cursor, from the request's decoded query and the cursor
    #: (IBM's ``{"href": ...}``); ``None``: the cursor as it is
    write_next: Callable[[Any, str], object] | None = field(default=None, kw_only=True)

    async def __call__(self, fan: FanOut) -> Reply:
        local, parts = await gather(fan)
        if local.status != 200 or not parts:
            return local
        query = fan.request.query
        page = decode(local)
        bodies = [page, *(body for _, _, body in parts)]
        items, repeats = self.in_order(
            (body.get(self.items, ()) for body in bodies), newest_first=self.newest_first(query)
        )
        size: int = getattr(query, self.limit)
        shown = items[:size]
        document = {**page, self.items: shown}
        for count in self.counts:
            document[count] = sum(body.get(count, 0) for body in bodies) - repeats
        more = len(items) > size or any(body.get(self.next) is not None for body in bodies)
        if shown and more:
            cursor = encode_cursor(self.key(shown[-1]))
            document[self.next] = cursor if self.write_next is None else self.write_next(query, cursor)
        elif self.next in page:
            document[self.next] = None
        return answer(local, document)


@final
@frozen
class OffsetListing(Ordered):
    """A page merged from each node's first items of the same listing, paged by offset (see the module's doc)."""

    #: the most items one request may ask a node for: the route's largest ``limit``
    most: int = field(kw_only=True)
    #: the field of the page that counts every matching item
    count: str = field(default="count", kw_only=True)
    #: the query parameters (and fields of the page) that say where a page starts and how many items it holds
    offset: str = field(default="offset", kw_only=True)
    limit: str = field(default="limit", kw_only=True)

    async def __call__(self, fan: FanOut) -> Reply:
        others = await fan.others()
        if not others:
            return await fan.local()  # the only node: its own page is the page
        query = fan.request.query
        start: int = getattr(query, self.offset)
        size: int = getattr(query, self.limit)
        wanted = start + size
        first = min(wanted, self.most)
        local, parts = await gather(fan, {self.offset: 0, self.limit: first}, others=others)
        if local.status != 200:
            return local
        page = decode(local)
        lists: dict[str | None, list[Item]] = {None: list(page.get(self.items, ()))}  # by node (None: this one)
        urls: dict[str, str] = {}
        total: int = page.get(self.count, 0)
        for name, url, body in parts:
            lists[name], urls[name] = list(body.get(self.items, ())), url
            total += body.get(self.count, 0)
        reading = {node for node, listed in lists.items() if len(listed) == first < wanted}
        while reading:  # the nodes whose last request was full, while they have given fewer than wanted
            windows = {node: (len(lists[node]), min(self.most, wanted - len(lists[node]))) for node in reading}
            found = await self._read(fan, urls, windows)
            reading = set()
            for node, items in found.items():
                lists[node] += items
                if len(items) == windows[node][1] and len(lists[node]) < wanted:
                    reading.add(node)
        items, repeats = self.in_order(lists.values(), newest_first=self.newest_first(query))
        document = {**page, self.items: items[start:wanted], self.count: total - repeats}
        return answer(local, {**document, self.offset: start, self.limit: size})

    async def _read(
        self, fan: FanOut, urls: Mapping[str, str], windows: Mapping[str | None, tuple[int, int]]
    ) -> dict[str | None, list[Item]]:
        """Each node's items in its window (offset, limit), all asked at once; a node left out gives none."""
        asks = {node: {self.offset: offset, self.limit: limit} for node, (offset, limit) in windows.items()}
        local, bodies = await ask_each(fan, urls, asks)
        found: dict[str | None, list[Item]] = {node: list(body.get(self.items, ())) for node, body in bodies.items()}
        if local is not None:
            reply = local.unwrap()
            if reply.status == 200:
                found[None] = list(decode(reply).get(self.items, ()))
            else:  # it answered the first request, not this one: its part is short, and the answer says so
                fan.left_out(fan.peers.node, f"this node answered {reply.status} past its first {self.most}")
        return found
