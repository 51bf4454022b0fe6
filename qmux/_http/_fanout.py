"""Merging the parts of a fanned-out request: per-name entries, totals (`Merge`s), and how a merge asks its parts.

Each merge asks this node's part and every other node's at once (`gather`), each node answering
only for what it holds, and makes one answer of them in the shape one node gives:

- `ByName`: entries named uniquely (backends): each once, the one of the node that holds it
  when several nodes list it.
- `Totals`: numbers summed over the nodes: per name (usage per backend), or the document's own
  (IBM's instance usage).

The listings' merges (`Listing`, `OffsetListing`) are ``_merged_listings``; the event stream's,
``_merged_events``. A part whose node was left out (no 200 in time) is missing from the answer,
which then says so in its `PARTIAL` header. An answer this node does not give with 200 (a
refusal of the request's input) is the answer: the other nodes would refuse it alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, final

import attrs
import msgspec
import outcome
import trio
from attrs import frozen

from .._core import QmuxError
from ._forwarding import FanOut
from ._messages import Reply, Request, capture

__all__ = ["ByName", "Params", "Totals", "answer", "ask_each", "decode", "gather"]


#: query parameters a merge asks its parts with instead of the client's: name -> value
Params = Mapping[str, int | str]


async def gather(
    fan: FanOut, params: Params | None = None, *, others: Mapping[str, str] | None = None
) -> tuple[Reply, list[tuple[str, str, Any]]]:
    """This node's reply and, in the order `Peers.others` gives, each other node's name, base URL
    and 200 body decoded from JSON (those left out are not there); all asked at once, each with
    `params` in place of the client's parameters of those names. `others`: the other nodes, if
    the caller has asked `FanOut.others` already."""
    if others is None:
        others = await fan.others()
    local, bodies = await ask_each(fan, others, {None: params, **dict.fromkeys(others, params)})
    assert local is not None  # this node was asked
    return local.unwrap(), [(name, url, bodies[name]) for name, url in others.items() if name in bodies]


async def ask_each(
    fan: FanOut, urls: Mapping[str, str], params: Mapping[str | None, Params | None]
) -> tuple[outcome.Outcome[Reply] | None, dict[str, Any]]:
    """The nodes `params` names (``None``: this one), all asked at once, each with its own
    parameters in place of the client's: this node's answer (``None`` if it was not asked), and
    each other node's 200 body decoded from JSON (those left out are not there). Other nodes are
    looked up in `urls`."""
    bodies: dict[str, Any] = {}

    async def ask(name: str, given: Params | None) -> None:
        body = await _part(fan, name, urls[name], given)
        if body is not None:
            bodies[name] = body

    local: outcome.Outcome[Reply] | None = None
    async with trio.open_nursery() as nursery:
        for name, given in params.items():
            if name is not None:
                nursery.start_soon(ask, name, given)
        if None in params:
            given = params[None]
            local = await capture(fan.local(_with_params(fan.request, given) if given else None))
            if isinstance(local, outcome.Error):
                nursery.cancel_scope.cancel()  # this node refused or failed: the others' parts are not needed
    return local, bodies


async def _part(fan: FanOut, name: str, url: str, params: Params | None = None) -> Any:
    """Node `name`'s 200 body decoded from JSON, asked with `params` in place of the client's;
    ``None`` if it was left out (no 200 in time, or no JSON)."""
    query = {key: str(value) for key, value in params.items()} if params else None
    response = await fan.ask(name, url, query=query)
    if response is None:
        return None
    try:
        return msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        fan.left_out(name, "its answer is not JSON")
        return None


def _with_params(request: Request, params: Params) -> Request:
    """`request` with the query parameters `params` set, as this node's decoding would give them."""
    return attrs.evolve(request, query=msgspec.structs.replace(request.query, **params))


def decode(reply: Reply) -> dict[str, Any]:
    """The JSON object of `reply`'s body."""
    decoded: dict[str, Any] = msgspec.json.decode(reply.body)
    return decoded


def answer(reply: Reply, document: dict[str, Any]) -> Reply:
    """`document` as the body of `reply`'s 200, with `reply`'s headers."""
    return Reply(200, msgspec.json.encode(document), reply.headers)


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
        page = decode(local)
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
        return answer(local, {**page, self.items: merged})


@final
@frozen
class Totals:
    """Numbers summed over the nodes: per name under `field` (usage per backend), or, without a
    field, the document's own (IBM's instance usage). What is not a number is this node's."""

    #: the field that maps each name to its numbers (``backends``); ``None``: the document's own numbers
    field: str | None = None

    async def __call__(self, fan: FanOut) -> Reply:
        local, parts = await gather(fan)
        if local.status != 200 or not parts:
            return local
        page = decode(local)
        bodies = (page, *(body for _, _, body in parts))
        if self.field is None:
            summed: dict[str, Any] = {}
            for body in bodies:
                _add(summed, body)
            return answer(local, summed)
        totals: dict[str, dict[str, Any]] = {}
        for body in bodies:
            for name, numbers in body.get(self.field, {}).items():
                _add(totals.setdefault(name, {}), numbers)
        return answer(local, {**page, self.field: totals})


def _add(into: dict[str, Any], numbers: Mapping[str, Any]) -> None:
    for key, value in numbers.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            into[key] = into.get(key, 0) + value
        else:
            into.setdefault(key, value)
