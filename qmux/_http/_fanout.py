"""Merging the parts of a fanned-out request: listings, per-name entries, totals (`Merge`s).

Each merge asks this node's part and every other node's at once (`gather`), each node answering
only for what it holds, and makes one answer of them in the shape one node gives:

- `Listing`: pages newest first by ``(created, id)``, the key the core lists by (SPEC V1). Each
  node is asked for ``limit`` items after the client's cursor; the merge keeps the newest
  ``limit`` of them all, and its cursor is the key of the last one kept. The global page is
  exact: every item of it is among its own node's first ``limit`` after the cursor. Cursors stay
  opaque and node-free, so the next page may be asked of any node.
- `ByName`: entries named uniquely (backends): each once, the one of the node that holds it
  when several nodes list it.
- `Totals`: numbers per name (usage per backend), summed over the nodes.

A part whose node was left out (no 200 in time) is missing from the answer, which then says so
in its `PARTIAL` header. An answer this node does not give with 200 (a refusal of the request's
input) is the answer: the other nodes would refuse it alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, final

import msgspec
import outcome
import trio
from attrs import frozen

from .._core import QmuxError
from ._forwarding import FanOut
from ._listing import Key, encode_cursor
from ._messages import Reply, capture

__all__ = ["ByName", "Listing", "Totals", "gather"]


async def gather(fan: FanOut) -> tuple[Reply, list[tuple[str, str, Any]]]:
    """This node's reply and, in the order `Peers.others` gives, each other node's name, base URL
    and 200 body decoded from JSON (those left out are not there); all asked at once."""
    others = await fan.others()
    bodies: dict[str, Any] = {}

    async def ask(name: str, url: str) -> None:
        response = await fan.ask(name, url)
        if response is not None:
            try:
                bodies[name] = msgspec.json.decode(response.content)
            except msgspec.DecodeError:
                fan.left_out(name, "its answer is not JSON")

    async with trio.open_nursery() as nursery:
        for name, url in others.items():
            nursery.start_soon(ask, name, url)
        local = await capture(fan.local())
        if isinstance(local, outcome.Error):
            nursery.cancel_scope.cancel()  # this node refused or failed: the others' parts are not needed
    return local.unwrap(), [(name, url, bodies[name]) for name, url in others.items() if name in bodies]


def _decode(reply: Reply) -> dict[str, Any]:
    decoded: dict[str, Any] = msgspec.json.decode(reply.body)
    return decoded


def _json(reply: Reply, document: dict[str, Any]) -> Reply:
    """`document` as the body of `reply`'s 200, with `reply`'s headers."""
    return Reply(200, msgspec.json.encode(document), reply.headers)


@final
@frozen
class Listing:
    """A page merged from each node's page of the same listing (see the module's doc)."""

    #: the field of the page that holds its items (``sessions``, ``jobs``)
    items: str
    #: where an item says when it was created: keys and indexes into its document
    created: tuple[str | int, ...]
    #: the field of the page that holds the next page's cursor
    next: str = "next"
    #: the query parameter that says how many items a page holds
    limit: str = "limit"

    def key(self, document: Mapping[str, Any]) -> Key:
        """An item's place in the listing: when it was created, then its id."""
        found: Any = document
        for step in self.created:
            found = found[step]
        return dt.datetime.fromisoformat(found), str(document["id"])

    async def __call__(self, fan: FanOut) -> Reply:
        local, parts = await gather(fan)
        if local.status != 200 or not parts:
            return local
        page = _decode(local)
        more = page.get(self.next) is not None
        seen: set[str] = set()
        items: list[dict[str, Any]] = []
        for body in (page, *(body for _, _, body in parts)):
            more = more or body.get(self.next) is not None
            for item in body.get(self.items, ()):
                if item["id"] not in seen:  # once, even while a backend moves between nodes
                    seen.add(item["id"])
                    items.append(item)
        items.sort(key=self.key, reverse=True)
        size: int = getattr(fan.request.query, self.limit)
        shown = items[:size]
        cursor = encode_cursor(self.key(shown[-1])) if shown and (more or len(items) > size) else None
        return _json(local, {**page, self.items: shown, self.next: cursor})


@final
@frozen
class ByName:
    """Entries named uniquely, each once: the holder's when several nodes list it (backends)."""

    #: the field that holds the entries (``devices``)
    items: str
    #: the entry's field that names it
    name: str = "name"

    async def __call__(self, fan: FanOut) -> Reply:
        local, parts = await gather(fan)
        if local.status != 200 or not parts:
            return local
        page = _decode(local)
        sources: dict[str, dict[str | None, dict[str, Any]]] = {}  # name -> node's URL (None: this one) -> entry
        for node, body in ((None, page), *((url, body) for _, url, body in parts)):
            for entry in body.get(self.items, ()):
                sources.setdefault(str(entry[self.name]), {}).setdefault(node, entry)
        merged: list[dict[str, Any]] = []
        for name, by_node in sources.items():
            if len(by_node) > 1:
                try:
                    owner = await fan.peers.owner_of_backend(name)
                except QmuxError:  # between owners: any node's description will do
                    owner = None
                chosen = by_node.get(owner)
                merged.append(chosen if chosen is not None else next(iter(by_node.values())))
            else:
                merged.append(next(iter(by_node.values())))
        return _json(local, {**page, self.items: merged})


@final
@frozen
class Totals:
    """Numbers per name, summed over the nodes (usage per backend)."""

    #: the field that maps each name to its numbers (``backends``)
    field: str

    async def __call__(self, fan: FanOut) -> Reply:
        local, parts = await gather(fan)
        if local.status != 200 or not parts:
            return local
        page = _decode(local)
        totals: dict[str, dict[str, Any]] = {}
        for body in (page, *(body for _, _, body in parts)):
            for name, numbers in body.get(self.field, {}).items():
                _add(totals.setdefault(name, {}), numbers)
        return _json(local, {**page, self.field: totals})


def _add(into: dict[str, Any], numbers: Mapping[str, Any]) -> None:
    for key, value in numbers.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            into[key] = into.get(key, 0) + value
        else:
            into.setdefault(key, value)
