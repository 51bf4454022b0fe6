"""The jobs submitted through IBM's API: what its ``GET /jobs`` lists, and what IBM's API says of a job beyond the core.

The core knows a job's owner, state, inputs and result; IBM's client also reads when a job was
submitted, whether it is *private*, its params (``job.inputs``), and expects a job it
deleted to be gone. Only this front door sees those, so `JobIndex` keeps them, bounded like the
core's own memory:

- ``params`` is the very object the core holds as the job's inputs (no copy); a private job's
  params are not kept, and its result is answered once;
- ``deleted``: the core forgets a job only by retention, so a deleted job is hidden from IBM's
  API (404, as IBM answers) until the core forgets it; the native API still shows it.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, final

import attrs
from attrs import field, frozen

from .._core import wall_now

__all__ = ["JobEntry", "JobIndex"]


@frozen
class JobEntry:
    """What this front door remembers of a job it took: whose it is and when it came."""

    tenant: str
    session_id: str | None
    backend: str
    program_id: str
    #: when this front door took it (`JobIndex.stamp`): what ``GET /jobs`` lists by, with the id
    created: dt.datetime
    #: the job's params as decoded at submission (the core's own inputs object); None if private
    params: Any = field(default=None, eq=False, repr=False)
    #: IBM's private job: no params shown, its result answered once
    private: bool = False
    #: its private result has been read
    result_read: bool = False
    #: deleted through IBM's API: hidden there until the core forgets the job
    deleted: bool = False

    @property
    def created_iso(self) -> str:
        return self.created.isoformat(timespec="microseconds").replace("+00:00", "Z")


@final
class JobIndex:
    """The jobs submitted through IBM's API, for ``GET /jobs`` and each job's ``created``.

    Bounded like the core's memory: past `limit`, entries whose job the core has forgotten
    are dropped, oldest first, with a rotating scan (an entry the
    core still knows goes to the back, so a long-lived job never hides forgotten ones). The
    scan reorders the map, so listings sort, by ``(created, id)``: the key every node of a
    cluster lists by, so that their listings merge (`qmux._http.OffsetListing`), and, since
    `stamp` never repeats or goes back, the order this front door took the jobs in.
    """

    __slots__ = ("_entries", "_last", "_limit")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._entries: OrderedDict[str, JobEntry] = OrderedDict()
        self._last = dt.datetime.min.replace(tzinfo=dt.UTC)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, job_id: str) -> JobEntry | None:
        return self._entries.get(job_id)

    def in_order(self, *, newest_first: bool) -> list[tuple[str, JobEntry]]:
        """The entries by ``(created, id)``: newest first, or oldest first."""
        return sorted(self._entries.items(), key=lambda item: (item[1].created, item[0]), reverse=newest_first)

    def stamp(self) -> dt.datetime:
        """A job's creation time, taken now: the wall clock's (UTC, to the microsecond), and later
        than any this index gave before (the clock may tie, or step back)."""
        self._last = max(wall_now(), self._last + dt.timedelta(microseconds=1))
        return self._last

    def update(self, job_id: str, **changes: Any) -> JobEntry | None:
        """Replace some fields of `job_id`'s entry (``deleted``, ``params``); ``None`` if it has none."""
        entry = self._entries.get(job_id)
        if entry is None:
            return None
        entry = self._entries[job_id] = attrs.evolve(entry, **changes)
        return entry

    async def add(self, job_id: str, entry: JobEntry, exists: Callable[[str], Awaitable[bool]]) -> None:
        entries = self._entries
        entries[job_id] = entry
        excess = len(entries) - self._limit
        for _ in range(min(len(entries), 2 * excess)):
            if excess <= 0:
                break
            oldest = next(iter(entries))
            alive = await exists(oldest)
            if oldest not in entries:
                continue
            if alive:
                entries.move_to_end(oldest)
            else:
                del entries[oldest]
                excess -= 1
