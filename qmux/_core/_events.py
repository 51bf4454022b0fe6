"""The event hub: a bounded fan-out of what happens in a service to whoever listens (SPEC E1).

Sessions and jobs *publish* their state changes; readers *subscribe* with a filter (a session,
a job, a backend, an owner) and read at their own pace. Publishing never waits: each
subscription has a bounded buffer, and a reader that falls behind loses the oldest events and
is told how many with one ``lagged`` event, so a slow reader never slows a session.

Nothing is made when nobody listens: a publisher reads `quiet` (an attribute, no call) and
asks `wants` only when it is false, and an event object exists only if some subscription (or
the resumption history) will take it.

For readers that reconnect (Server-Sent Events over HTTP), the hub keeps the most recent events
in a bounded history while anyone listens and for `linger` seconds after the last one left, so
that a reader can resume after the last event id it saw (``Last-Event-ID``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final, final

import trio
from attrs import field, frozen

from ._errors import CapacityError

__all__ = ["EVENT_KINDS", "Event", "EventHub", "Subscription"]

#: every kind of event, in the order a session or a job goes through them
EVENT_KINDS: Final = (
    "session.open",
    "session.active",
    "session.inactive",
    "session.closed",
    "session.ittl_warning",
    "session.max_time_warning",
    "job.queued",
    "job.running",
    "job.done",
    "job.error",
    "job.cancelled",
    "lagged",
)


@frozen
class Event:
    """One thing that happened (SPEC E1): a session's state change, a job's transition, a warning."""

    #: one of `EVENT_KINDS`
    kind: str
    #: when it happened (UTC)
    at: dt.datetime
    session_id: str | None = None
    job_id: str | None = None
    #: the details: ``reason`` (session changes), ``seconds_left`` (warnings), ``missed`` (lagged)
    data: Mapping[str, Any] = field(factory=dict)
    #: its place in the service's sequence of events: resume after it (``Last-Event-ID``)
    seq: int = 0
    #: the backend it happened on
    backend: str | None = None


@final
class Subscription:
    """One reader's bounded view of the hub: ``async for event in subscription``.

    It ends when its stream ends (a session closed with its jobs ended, a job ended, the service
    stopped) or when `close` is called (``async with`` does that); one that is dropped unread is
    forgotten by the hub when it is garbage-collected.
    """

    __slots__ = (
        "__weakref__",
        "_buffer",
        "_closed",
        "_ended",
        "_finalizer",
        "_missed",
        "_stamp",
        "_wakeup",
        "backend",
        "ends_with",
        "job_id",
        "limit",
        "owner",
        "session_id",
    )

    def __init__(
        self,
        *,
        session_id: str | None,
        job_id: str | None,
        backend: str | None,
        owner: str | None,
        limit: int,
        ends_with: Callable[[Event], bool] | None,
        stamp: Callable[[], dt.datetime],
    ) -> None:
        #: the service's wall clock now (it follows a virtual clock in tests)
        self._stamp = stamp
        self.session_id, self.job_id, self.backend, self.owner = session_id, job_id, backend, owner
        self.limit = limit
        #: the stream ends after an event this says is the last (a job's end)
        self.ends_with = ends_with
        self._buffer: deque[Event] = deque()
        self._missed = 0
        self._wakeup = trio.Event()
        self._closed = False
        self._ended = False
        self._finalizer: Callable[[], object] = lambda: None

    def matches(self, event: Event, owner: str | None) -> bool:
        return (
            (self.session_id is None or event.session_id == self.session_id)
            and (self.job_id is None or event.job_id == self.job_id)
            and (self.backend is None or event.backend == self.backend)
            and (self.owner is None or owner == self.owner)
        )

    def offer(self, event: Event) -> None:
        """Take `event` without waiting: past the buffer's limit, the oldest is dropped and counted."""
        if self._closed:
            return
        if len(self._buffer) >= self.limit:
            self._buffer.popleft()
            self._missed += 1
        self._buffer.append(event)
        self._wakeup.set()

    def end(self) -> None:
        """No more events will come: the reader ends after what it holds."""
        self._ended = True
        self._wakeup.set()

    def close(self) -> None:
        """Stop reading: the hub forgets it at once."""
        self._closed = True
        self._wakeup.set()
        self._finalizer()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._missed:
                missed, self._missed = self._missed, 0
                await trio.lowlevel.checkpoint()
                return Event("lagged", self._stamp(), data={"missed": missed})
            if self._buffer:
                event = self._buffer.popleft()
                if self.ends_with is not None and self.ends_with(event):
                    self.end()
                    self._buffer.clear()
                await trio.lowlevel.checkpoint()
                return event
            if self._ended or self._closed:
                self.close()
                raise StopAsyncIteration
            self._wakeup = trio.Event()
            await self._wakeup.wait()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.close()


@final
class EventHub:
    """Routes each published event to the subscriptions whose filter it matches."""

    def __init__(
        self,
        *,
        wall: Callable[[float], dt.datetime],
        buffer: int = 1000,
        history: int = 10_000,
        linger: float = 60.0,
        max_per_owner: int = 100,
    ) -> None:
        self._wall = wall
        self.buffer = buffer
        self._by_session: dict[str, weakref.WeakSet[Subscription]] = {}
        self._by_job: dict[str, weakref.WeakSet[Subscription]] = {}
        self._wide: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self._per_owner: dict[str | None, int] = {}
        self._max_per_owner = max_per_owner
        self._seq = itertools.count(1)
        #: recent events with their owners, for readers that resume (bounded)
        self._history: deque[tuple[Event, str | None]] = deque(maxlen=history)
        self._linger = linger
        self._keep_history_until = -math.inf
        self._closed = False
        #: true while no event can reach anyone (nobody subscribed, no history kept for resumption):
        #: read on every job transition, so publishers skip all work with one attribute test
        self.quiet = True

    # -- publishing --------------------------------------------------------------------------

    def wants(self, session_id: str | None, job_id: str | None = None) -> bool:
        """Whether an event of this session or job would reach anyone (cheap: ask before making one)."""
        if self.quiet:
            return False
        if self._per_owner:
            if self._wide or (session_id is not None and session_id in self._by_session):
                return True
            if job_id is not None and job_id in self._by_job:
                return True
        return self._keeps_history()

    def _keeps_history(self) -> bool:
        """Whether the history still lingers after the last reader left; once it has not, the hub is quiet."""
        if self._keep_history_until == -math.inf:
            return False
        if trio.current_time() < self._keep_history_until:
            return True
        if not self._per_owner:
            self._keep_history_until = -math.inf
            self.quiet = True
        return False

    def watching(self, session_id: str) -> bool:
        """Whether anyone listens for this session's events now (warnings are armed only then)."""
        return bool(self._per_owner) and bool(self._wide or session_id in self._by_session)

    def _now(self) -> dt.datetime:
        return self._wall(trio.current_time())

    def make(self, kind: str, *, data: Mapping[str, Any] | None = None, **fields: Any) -> Event:
        """An event stamped now, with the next id of the sequence."""
        return Event(kind, self._wall(trio.current_time()), data=data or {}, seq=next(self._seq), **fields)

    def publish(
        self,
        kind: str,
        *,
        session_id: str | None = None,
        job_id: str | None = None,
        backend: str | None = None,
        owner: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        if not self.wants(session_id, job_id):
            return
        event = self.make(kind, data=data, session_id=session_id, job_id=job_id, backend=backend)
        self._history.append((event, owner))
        targets: set[Subscription] = set(self._wide)
        if session_id is not None and session_id in self._by_session:
            targets.update(self._by_session[session_id])
        if job_id is not None and job_id in self._by_job:
            targets.update(self._by_job[job_id])
        for subscription in targets:
            if subscription.matches(event, owner):
                subscription.offer(event)

    # -- subscribing ---------------------------------------------------------------------------

    def subscribe(
        self,
        *,
        session_id: str | None = None,
        job_id: str | None = None,
        backend: str | None = None,
        owner: str | None = None,
        first: list[Event] | None = None,
        ends_with: Callable[[Event], bool] | None = None,
        after: int | None = None,
    ) -> Subscription:
        """A new subscription. `first`: events it starts with (the current state); `after`: resume
        after that event id from the history (a ``lagged`` event says if some are gone)."""
        if self._closed:
            raise CapacityError("the service has shut down: no new event subscriptions")
        if self._per_owner.get(owner, 0) >= self._max_per_owner:
            raise CapacityError(
                f"{self._max_per_owner} event subscriptions are open for this owner, its limit; "
                "close some or raise max_subscribers_per_owner"
            )
        subscription = Subscription(
            session_id=session_id,
            job_id=job_id,
            backend=backend,
            owner=owner,
            limit=self.buffer,
            ends_with=ends_with,
            stamp=self._now,
        )
        self._per_owner[owner] = self._per_owner.get(owner, 0) + 1
        self.quiet = False
        subscription._finalizer = weakref.finalize(subscription, self._forget, owner, session_id, job_id)
        if after is not None:
            self._replay(subscription, after)
        for event in first or ():
            subscription.offer(event)
        if session_id is not None:
            self._by_session.setdefault(session_id, weakref.WeakSet()).add(subscription)
        elif job_id is not None:
            self._by_job.setdefault(job_id, weakref.WeakSet()).add(subscription)
        else:
            self._wide.add(subscription)
        return subscription

    def _replay(self, subscription: Subscription, after: int) -> None:
        oldest = self._history[0][0].seq if self._history else None
        if oldest is not None and after + 1 < oldest:
            subscription._missed += oldest - after - 1  # gone from the history: say how many
        for event, owner in self._history:
            if event.seq > after and subscription.matches(event, owner):
                subscription.offer(event)

    def _forget(self, owner: str | None, session_id: str | None, job_id: str | None) -> None:
        """A subscription closed or was dropped: its slot is free (the weak sets let go of it)."""
        for index, key in ((self._by_session, session_id), (self._by_job, job_id)):
            if key is not None and key in index and not index[key]:
                del index[key]
        count = self._per_owner.get(owner, 0) - 1
        if count > 0:
            self._per_owner[owner] = count
        else:
            self._per_owner.pop(owner, None)
        if not self._per_owner:
            try:
                self._keep_history_until = trio.current_time() + self._linger
            except RuntimeError:  # outside Trio (garbage collected late): no linger
                self._keep_history_until = -math.inf
                self.quiet = True

    def end_session(self, session_id: str) -> None:
        """A session has closed and its jobs have ended: its streams end after what they hold."""
        for subscription in list(self._by_session.get(session_id, ())):
            subscription.end()

    def subscriber_count(self) -> int:
        return sum(self._per_owner.values())

    def close(self) -> None:
        """The service stops: every stream ends after what it holds."""
        self._closed = True
        everyone = itertools.chain(self._wide, *self._by_session.values(), *self._by_job.values())
        for subscription in list(everyone):
            subscription.end()
