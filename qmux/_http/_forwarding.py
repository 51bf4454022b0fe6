"""Several nodes, one API: what a node knows of the others (`Peers`), and where each route's answer is (`Locate`).

In a cluster (several ``qmux serve`` nodes over one database) each backend is run by exactly one
live node, its owner, and so are its sessions and jobs. Any node answers any client request:

- a request that names a session, a job or a backend (a path parameter, a body field, a query
  filter: the route's `Locate` says which, in order) is answered by the node that holds it: here
  if this node holds it (a dict lookup in the service), else relayed to the owner `Peers` names
  (`qmux._http._relay`), else here (its 404);
- a request that names none on a route with a `Merge` (the listings, usage, the event stream) is
  fanned out: every live node answers its own part, and the merge puts the parts together
  (`qmux._http._fanout`, `qmux._http._merged_listings`, `qmux._http._merged_events`).

Every request a node sends another carries `FORWARDED_BY`, and a request that carries it is
answered where it arrives, never sent on: no loops, and each node answers only its own part of
a fan-out. Authentication and admission happen first, on the node the client reached, so a bad
token is never sent on. Without `Peers` (one node) none of this runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, Protocol

import httpx
from attrs import frozen

from ._messages import Reply, Request

__all__ = [
    "FORWARDED_BY",
    "PARTIAL",
    "Clue",
    "FanOut",
    "Kind",
    "Locate",
    "Merge",
    "Peers",
    "in_body",
    "in_path",
    "in_query",
    "locate",
]

#: request header on every request one node sends another: the sender's node name
FORWARDED_BY: Final = "qmux-forwarded-by"
#: answer header of a fanned-out request some nodes did not answer in time: their names
PARTIAL: Final = "qmux-partial"

#: what a clue names: a session's id, a job's id, or a backend's name
Kind = Literal["session", "job", "backend"]
_KINDS: Final[Mapping[str, Kind]] = {"session_id": "session", "job_id": "job", "backend": "backend"}


class Peers(Protocol):
    """This node's view of the cluster, as the node runtime keeps it (leases in the database).

    Its calls are made on the request path, for requests naming something this node does not
    hold and for every fan-out: they should answer from what the runtime already knows, and
    reach the database only when they must. A node's base URL is the same string in every
    answer (``owner_of_*`` and `others`).
    """

    @property
    def node(self) -> str:
        """This node's name (``[cluster] node``)."""

    @property
    def lease(self) -> float:
        """The lease, in seconds: how long a dead node's backends take to move (a client told to
        come back, Retry-After, waits about this long)."""

    async def owner_of_backend(self, backend: str) -> str | None:
        """The base URL of the other live node that holds `backend`; ``None``: this node, or nobody."""

    async def owner_of_session(self, session_id: str) -> str | None:
        """The base URL of the other live node that holds the session's backend; ``None``: this node, or nobody."""

    async def owner_of_job(self, job_id: str) -> str | None:
        """The base URL of the other live node that holds the job's backend; ``None``: this node, or nobody."""

    async def others(self) -> Mapping[str, str]:
        """The other live nodes: name -> base URL (``[cluster] advertise_url``)."""


@frozen
class Clue:
    """Where a request names what decides its node: a path parameter, a query filter or a body field."""

    kind: Kind
    where: Literal["path", "query", "body"]
    #: the parameter's or field's name
    name: str

    def value(self, request: Request) -> str | None:
        """What the request names here (``None``: it names nothing here)."""
        if self.where == "path":
            return request.params.get(self.name)
        found = getattr(request.query if self.where == "query" else request.body, self.name, None)
        return found if isinstance(found, str) else None


def _clue(where: Literal["path", "query", "body"], name: str) -> Clue:
    kind = _KINDS.get(name)
    if kind is None:
        raise ValueError(f"{name!r} names no session, job or backend; a clue is one of {', '.join(_KINDS)}")
    return Clue(kind, where, name)


def in_path(name: str) -> Clue:
    """The path parameter `name` (``session_id``, ``job_id`` or ``backend``)."""
    return _clue("path", name)


def in_query(name: str) -> Clue:
    """The query filter `name` (``session_id``, ``job_id`` or ``backend``)."""
    return _clue("query", name)


def in_body(name: str) -> Clue:
    """The body field `name` (``session_id``, ``job_id`` or ``backend``)."""
    return _clue("body", name)


class FanOut(Protocol):
    """One fanned-out request, as a `Merge` asks its parts."""

    @property
    def request(self) -> Request:
        """The request as this node decoded it."""

    @property
    def peers(self) -> Peers: ...

    async def local(self, request: Request | None = None) -> Reply:
        """This node's part: the route's handler, on `request` (default: the request itself)."""

    async def others(self) -> Mapping[str, str]:
        """The other live nodes (`Peers.others`)."""

    async def ask(
        self,
        node: str,
        url: str,
        *,
        headers: Mapping[str, str | None] | None = None,
        query: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response | None:
        """Node `node`'s part: the same request sent to `url`, marked `FORWARDED_BY` (`headers`
        replace the client's, ``None`` drops one; `query` parameters replace the client's of the
        same name). Its 200, read whole, or with `stream` open (the caller closes it); ``None`` if
        it did not answer 200 within the fan-out's bound: then it is `left_out`."""

    def left_out(self, node: str, reason: str) -> None:
        """Node `node`'s part is not in the answer, for `reason`: logged, and named in its `PARTIAL` header."""


class Merge(Protocol):
    """How a fanned-out request's parts make one answer."""

    async def __call__(self, fan: FanOut) -> Reply: ...


@frozen
class Locate:
    """Where a route's answer is, in a cluster: the first of `clues` the request names decides
    the node; naming none, every node answers its part and `merge` puts them together (without
    a merge: this node answers)."""

    clues: tuple[Clue, ...] = ()
    merge: Merge | None = None


def locate(*clues: Clue, merge: Merge | None = None) -> Locate:
    """A route's `Locate`: ``locate(in_path("job_id"))``, ``locate(in_query("backend"), merge=...)``."""
    return Locate(clues, merge)
