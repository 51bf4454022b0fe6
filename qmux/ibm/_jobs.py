"""The jobs submitted through IBM's API: what its ``GET /jobs`` lists and each job's ``created``.

The core knows a job's owner, state and result; IBM's client also filters and sorts on when a
job was submitted and its tags, which only this front door sees. `JobIndex` keeps those, bounded
like the core's own memory.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import final

from attrs import frozen

__all__ = ["JobEntry", "JobIndex"]


@frozen
class JobEntry:
    """What this front door remembers of a job it took: whose it is and when it came."""

    tenant: str
    session_id: str | None
    backend: str
    program_id: str
    created: dt.datetime
    tags: tuple[str, ...]
    #: the submission order (wall-clock times may tie or step back)
    seq: int

    @property
    def created_iso(self) -> str:
        return self.created.isoformat(timespec="microseconds").replace("+00:00", "Z")


@final
class JobIndex:
    """The jobs submitted through IBM's API, for ``GET /jobs`` and each job's ``created``.

    Bounded like the core's memory: past `limit`, entries whose job the core has forgotten
    are dropped, oldest first, with a rotating scan (an entry the
    core still knows goes to the back, so a long-lived job never hides forgotten ones). The
    scan reorders the map, so listings order by `JobEntry.seq`, the submission order.
    """

    __slots__ = ("_entries", "_limit", "_seq")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._entries: OrderedDict[str, JobEntry] = OrderedDict()
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, job_id: str) -> JobEntry | None:
        return self._entries.get(job_id)

    def in_order(self, *, newest_first: bool) -> list[tuple[str, JobEntry]]:
        return sorted(self._entries.items(), key=lambda item: item[1].seq, reverse=newest_first)

    def next_seq(self) -> int:
        return next(self._seq)

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
