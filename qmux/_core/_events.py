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
import functools
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


#: subscriptions by their key in the hub, held weakly
_Readers = dict[int, "weakref.ref[Subscription]"]


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
        "_forget",
        "_missed",
        "_reader",
        "_stamp",
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
        #: what the reader has not taken yet, oldest first (a list: a deque's first block alone
        #: would weigh more than an idle subscriber should)
        self._buffer: list[Event] = []
        self._missed = 0
        #: the task parked waiting for the next event (one reader at a time)
        self._reader: trio.lowlevel.Task | None = None
        self._closed = False
        self._ended = False
        #: tells the hub to forget it (set by the hub; called once, by `close`)
        self._forget: Callable[[], object] | None = None

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
            del self._buffer[0]
            self._missed += 1
        self._buffer.append(event)
        self._wake()

    def end(self) -> None:
        """No more events will come: the reader ends after what it holds."""
        self._ended = True
        self._wake()

    def close(self) -> None:
        """Stop reading: the hub forgets it at once."""
        self._closed = True
        self._wake()
        forget, self._forget = self._forget, None
        if forget is not None:
            forget()

    def _wake(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            trio.lowlevel.reschedule(reader)

    def _abort(self, _: object) -> trio.lowlevel.Abort:
        self._reader = None  # cancelled while parked: nothing may reschedule it now
        return trio.lowlevel.Abort.SUCCEEDED

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        """The next event; parks until one comes. A call that returns an event is a checkpoint:
        one that finds it waiting yields once; one that had to wait already did (and could be
        cancelled there)."""
        waited = False
        while True:
            if self._missed:
                missed, self._missed = self._missed, 0
                if not waited:
                    await trio.lowlevel.checkpoint()
                return Event("lagged", self._stamp(), data={"missed": missed})
            if self._buffer:
                event = self._buffer.pop(0)
                if self.ends_with is not None and self.ends_with(event):
                    self.end()
                    self._buffer.clear()
                if not waited:
                    await trio.lowlevel.checkpoint()
                return event
            if self._ended or self._closed:
                self.close()
                raise StopAsyncIteration
            if self._reader is not None:
                raise trio.BusyResourceError("another task is already reading this event stream")
            self._reader = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort)
            waited = True

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
        first_seq: int = 1,
    ) -> None:
        self._wall = wall
        self.buffer = buffer
        #: the subscriptions, each in one index (its session's, its job's, or the wide one), by key;
        #: weakly, so that one dropped unread is forgotten (its weak reference's callback takes it out)
        self._by_session: dict[str, _Readers] = {}
        self._by_job: dict[str, _Readers] = {}
        self._wide: _Readers = {}
        self._keys = itertools.count()
        self._per_owner: dict[str | None, int] = {}
        self._max_per_owner = max_per_owner
        #: the seq of this hub's first event: a service starts it at its start's wall time in
        #: microseconds, so that a hub started later (after a restart, on another node) numbers
        #: above an earlier one, and an id a hub never gave is told from its own (`_replay`)
        self.first_seq = first_seq
        #: the seq of the latest event made
        self._last_seq = first_seq - 1
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
        self._last_seq += 1
        return Event(kind, self._wall(trio.current_time()), data=data or {}, seq=self._last_seq, **fields)

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
        if self.wants(session_id, job_id):
            self.deliver(kind, session_id, job_id, backend, owner, data or {}, trio.current_time())

    def deliver(
        self,
        kind: str,
        session_id: str | None,
        job_id: str | None,
        backend: str | None,
        owner: str | None,
        data: Mapping[str, Any],
        now: float,
    ) -> None:
        """`publish` once `wants` said yes, of what happened at `now` (Trio time): for a publisher
        that asked already and knows the time (each job's transition)."""
        self._last_seq += 1
        event = Event(kind, self._wall(now), session_id, job_id, data, self._last_seq, backend)
        self._history.append((event, owner))
        if self._wide:
            _offer(self._wide, event, owner)
        if session_id is not None and (readers := self._by_session.get(session_id)):
            _offer(readers, event, owner)
        if job_id is not None and (readers := self._by_job.get(job_id)):
            _offer(readers, event, owner)

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
        key = next(self._keys)
        # forgotten once: when closed, or (its weak reference's callback) when dropped unclosed;
        # closing takes the reference out of the index first, so its callback never runs after
        forget = subscription._forget = functools.partial(self._forget, owner, session_id, job_id, key)
        ref = weakref.ref(subscription, forget)
        if after is not None:
            self._replay(subscription, after)
        for event in first or ():
            subscription.offer(event)
        if session_id is not None:
            self._by_session.setdefault(session_id, {})[key] = ref
        elif job_id is not None:
            self._by_job.setdefault(job_id, {})[key] = ref
        else:
            self._wide[key] = ref
        return subscription

    def _replay(self, subscription: Subscription, after: int) -> None:
        if not self.first_seq - 1 <= after <= self._last_seq:
            # An id this hub never gave: one of the server before a restart, or of another node
            # (its backend moved here). What that one made after it and never sent is gone with
            # it; the stream goes on with everything this hub still holds for the reader.
            after = self.first_seq - 1
        oldest = self._history[0][0].seq if self._history else None
        if oldest is not None and after + 1 < oldest:
            subscription._missed += oldest - after - 1  # gone from the history: say how many
        for event, owner in self._history:
            if event.seq > after and subscription.matches(event, owner):
                subscription.offer(event)

    def _forget(
        self, owner: str | None, session_id: str | None, job_id: str | None, key: int, _: object = None
    ) -> None:
        """A subscription closed or was dropped: out of its index at once, and its slot is free."""
        if session_id is not None:
            _drop(self._by_session, session_id, key)
        elif job_id is not None:
            _drop(self._by_job, job_id, key)
        else:
            self._wide.pop(key, None)
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
        for subscription in _live(self._by_session.get(session_id, {})):
            subscription.end()

    def subscriber_count(self) -> int:
        return sum(self._per_owner.values())

    def close(self) -> None:
        """The service stops: every stream ends after what it holds."""
        self._closed = True
        for readers in (self._wide, *self._by_session.values(), *self._by_job.values()):
            for subscription in _live(readers):
                subscription.end()


def _live(readers: _Readers) -> list[Subscription]:
    """The subscriptions of `readers` still alive, in a list of their own: what is done with
    them (or a collection meanwhile, whose weak-reference callbacks take dropped ones out) may change `readers`."""
    return [subscription for ref in list(readers.values()) if (subscription := ref()) is not None]


def _offer(readers: _Readers, event: Event, owner: str | None) -> None:
    for subscription in _live(readers):
        if subscription.matches(event, owner):
            subscription.offer(event)


def _drop(index: dict[str, _Readers], name: str, key: int) -> None:
    readers = index.get(name)
    if readers is not None:
        readers.pop(key, None)
        if not readers:
            del index[name]
