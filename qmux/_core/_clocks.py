"""The clocks of every session of a service: one heap of deadlines and one task that acts on them.

A session's three clocks (max_time S10, ITTL S8-S9, idle at open S19, and the warnings of E1)
come down to one deadline: the earliest. Each session actor used to wait in a cancel scope of its
own with that deadline, so that every clock that ran out cancelled the scope: a cancel reason, a
`trio.Cancelled` unwinding through the actor's frames with its traceback, then a new scope, its
status and two sets and a new entry in Trio's deadline heap for the next wait. Some fifteen
objects a wake-up, for the cyclic collector to scan, and at 10,000 sessions their churn fills its
young generation faster than its counts say (a new object replacing an old one counts as none).

Here a session *arms* its deadline in its service's `SessionClocks`: an entry in one heap. One
task sleeps until the earliest entry, in one movable cancel scope (DESIGN: a deadline in a
movable scope, not a timer task per deadline), and tells each session whose deadline has come
(`ClockOwner.clock_ran_out`), which handles it at once, whole, as it handles its scheduler's
notices: the actor task itself is not even woken unless the session ends.

Entries are weak, so the heap keeps no session alive; an entry whose session has since armed
another deadline is stale and skipped, and the heap is rebuilt without its stale entries once
they are half of it.
"""

from __future__ import annotations

import heapq
import itertools
import math
import weakref
from typing import Protocol, final

import trio

__all__ = ["ClockOwner", "SessionClocks"]

#: rebuild the heap once it holds this many entries more than twice those still armed at the last rebuild
_SLACK = 64


class ClockOwner(Protocol):
    """A session as its clocks see it."""

    @property
    def armed(self) -> float:
        """The deadline it armed last (``inf``: none): an entry for another one is stale."""
        ...

    def clock_ran_out(self, deadline: float) -> None:
        """Its armed `deadline` has come: act on it now (the clocks' task calls it)."""


@final
class SessionClocks:
    """The armed deadlines of a service's sessions, and the task that acts on them when they come."""

    __slots__ = ("_heap", "_next", "_nursery", "_prune_at", "_scope", "_seq", "_started")

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        #: (deadline, arrival, session): the order of arrival breaks ties, so sessions never compare
        self._heap: list[tuple[float, int, weakref.ref[ClockOwner]]] = []
        self._seq = itertools.count()
        self._prune_at = _SLACK
        #: the earliest deadline, and the scope the task sleeps in until then (while it sleeps)
        self._next = math.inf
        self._scope: trio.CancelScope | None = None
        self._started = False

    def arm(self, owner: ClockOwner, deadline: float) -> None:
        """Call `owner.clock_ran_out(deadline)` once `deadline` (Trio time) has come, unless it arms
        another deadline first. ``inf`` arms nothing."""
        if deadline == math.inf:
            return
        heap = self._heap
        heapq.heappush(heap, (deadline, next(self._seq), weakref.ref(owner)))
        if len(heap) > self._prune_at:
            self._prune()
        if deadline < self._next:
            self._next = deadline
            if self._scope is not None:
                self._scope.deadline = deadline
        if not self._started:
            self._started = True
            self._nursery.start_soon(self._run, name="qmux session clocks")

    def _prune(self) -> None:
        """Drop the stale entries: those of sessions gone, or since armed for another deadline."""
        live = []
        for entry in self._heap:
            owner = entry[2]()
            if owner is not None and owner.armed == entry[0]:
                live.append(entry)
        heapq.heapify(live)
        self._heap = live
        self._prune_at = 2 * len(live) + _SLACK

    async def _run(self) -> None:
        heap = self._heap
        while True:
            with trio.move_on_at(self._next) as self._scope:
                await trio.sleep_forever()
            self._scope = None
            now = trio.current_time()
            heap = self._heap
            while heap and heap[0][0] <= now:
                deadline, _, ref = heapq.heappop(heap)
                owner = ref()
                if owner is not None and owner.armed == deadline:
                    owner.clock_ran_out(deadline)
                heap = self._heap  # an owner's handling may arm deadlines (and rebuild the heap)
            self._next = heap[0][0] if heap else math.inf
