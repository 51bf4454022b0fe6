"""Everything that decides a session's state lives here (h11's ``_state.py`` is the model).

A session has two things that change:

* whether it holds its backend: `SessionState`, with IBM's names (``open``, ``active``,
  ``inactive``, ``closed``), which is what ``details()["state"]`` reports;
* what it takes in: `Intake` (``accepting``, ``draining``, ``closed``). *Draining* is a session
  its user closed while it still had jobs: it runs them and takes nothing new (S12).

Events move both, as the tables below say. `SessionMachine` applies the tables, checks their
guards, keeps the session's three clocks (`Deadlines`) and the history users read in
``details()``. It is pure: no Trio, no I/O, every method takes an explicit `now`. The actor
(``_session.py``) owns the job queue and the mailbox and drives the machine; Hypothesis drives
it alone in ``tests/core/test_session_state.py``.
"""

from __future__ import annotations

import enum
import math
from typing import Final, final

from ._errors import ClosedReason

__all__ = [
    "CLOSING_EVENTS",
    "HOLD_TRANSITIONS",
    "INTAKE_TRANSITIONS",
    "Deadlines",
    "Event",
    "Intake",
    "SessionMachine",
    "SessionState",
    "status_text",
]


class SessionState(enum.Enum):
    """Whether a session holds its backend, as IBM's API names it (SPEC S18)."""

    #: opened, no job has started yet (S3)
    OPEN = "open"
    #: holds its backend: its jobs run first (S7)
    ACTIVE = "active"
    #: deactivated after an ITTL gap; its next job waits in line (S9)
    INACTIVE = "inactive"
    #: ended for good; `closed_reason` says why
    CLOSED = "closed"


class Intake(enum.Enum):
    """What a session takes in."""

    #: takes new jobs
    ACCEPTING = "accepting"
    #: closed by its user with jobs left: runs them, takes nothing new, closes when they end (S12)
    DRAINING = "draining"
    #: takes nothing; its queued jobs have failed, running ones finish (S10, S13, S14)
    CLOSED = "closed"


class Event(enum.Enum):
    """What can happen to a session."""

    GRANTED = "granted"  #: its backend's scheduler made it the holder (S7)
    ITTL_EXPIRED = "ittl_expired"  #: idle and active for a whole ITTL (S9)
    HOLD_LOST = "hold_lost"  #: the process that held its backend is gone (a restart)
    CLOSE = "close"  #: its user closed it (S12)
    LIMIT_REACHED = "limit_reached"  #: it accepted its max_jobs-th job (L1)
    DRAINED = "drained"  #: the last job of a draining session ended (S12)
    CANCEL = "cancel"  #: its user cancelled it (S13)
    ROOT_JOB_CANCELLED = "root_job_cancelled"  #: its first job was cancelled (S14)
    JOB_FAILED = "job_failed"  #: one of its jobs failed, and its failure_policy is "abort" (F1)
    MAX_TIME = "max_time"  #: max_time ran out (S10)
    IDLE_AT_OPEN = "idle_at_open"  #: no job within the idle-at-open delay (S19)
    CRASHED = "crashed"  #: a bug in its actor (one-for-one supervision)
    SHUTDOWN = "shutdown"  #: the service stopped around it


# -- the tables: every transition a session can make --------------------------------------------

#: (state, event) -> next state: the hold on the backend
HOLD_TRANSITIONS: Final = {
    (SessionState.OPEN, Event.GRANTED): SessionState.ACTIVE,  # its first job may start (S3, S7)
    (SessionState.INACTIVE, Event.GRANTED): SessionState.ACTIVE,  # its next job starts: active again (S9)
    (SessionState.ACTIVE, Event.ITTL_EXPIRED): SessionState.INACTIVE,  # guard: nothing queued or running (S9)
    (SessionState.ACTIVE, Event.HOLD_LOST): SessionState.INACTIVE,  # its next job waits in line (S9)
}

#: (intake, event) -> next intake short of closing, and the reason it will close for
INTAKE_TRANSITIONS: Final = {
    (Intake.ACCEPTING, Event.CLOSE): (Intake.DRAINING, ClosedReason.CLOSED),  # guard: jobs left (S12)
    (Intake.ACCEPTING, Event.LIMIT_REACHED): (Intake.DRAINING, ClosedReason.MAX_JOBS),  # L1
}

#: events that close a live session (any state but CLOSED), and the reason its users are told;
#: ``None``: the reason it began draining for
CLOSING_EVENTS: Final[dict[Event, ClosedReason | None]] = {
    Event.CLOSE: ClosedReason.CLOSED,  # guard: accepting, no job queued or running (S12)
    Event.DRAINED: None,  # guard: draining (S12)
    Event.CANCEL: ClosedReason.CANCELLED,  # S13
    Event.ROOT_JOB_CANCELLED: ClosedReason.ROOT_JOB_CANCELLED,  # S14
    Event.JOB_FAILED: ClosedReason.JOB_FAILED,  # F1
    Event.MAX_TIME: ClosedReason.MAX_TIME,  # S10
    Event.IDLE_AT_OPEN: ClosedReason.IDLE_AT_OPEN,  # S19
    Event.CRASHED: ClosedReason.CRASHED,
    Event.SHUTDOWN: ClosedReason.SERVICE_SHUTDOWN,
}


def status_text(state: SessionState, accepting_jobs: bool) -> str:
    """The user-facing status (SPEC S17), mapped from state as qiskit-ibm-runtime maps it."""
    if state is SessionState.ACTIVE:
        return "In progress, accepting new jobs" if accepting_jobs else "In progress, not accepting new jobs"
    if state is SessionState.CLOSED:
        return "Closed"
    return "Pending"


@final
class Deadlines:
    """A session's three clocks, as instants on the caller's clock (``math.inf``: not running)."""

    __slots__ = ("idle_at_open", "ittl", "max_time")

    def __init__(self, *, idle_at_open: float = math.inf) -> None:
        #: S10: set when the first job starts
        self.max_time = math.inf
        #: S8/S9: set when an active session runs out of work
        self.ittl = math.inf
        #: S19: set at open, cleared by the first job
        self.idle_at_open = idle_at_open

    @property
    def earliest(self) -> float:
        return min(self.max_time, self.ittl, self.idle_at_open)

    def expired(self, now: float) -> Event | None:
        """The clock that has run out by `now`, the one that closes first if several have."""
        if now >= self.max_time:
            return Event.MAX_TIME
        if now >= self.idle_at_open:
            return Event.IDLE_AT_OPEN
        if now >= self.ittl:
            return Event.ITTL_EXPIRED
        return None

    def clear(self) -> None:
        self.max_time = self.ittl = self.idle_at_open = math.inf


@final
class SessionMachine:
    """A session's state, its clocks and its history, moved only by the tables above."""

    __slots__ = (
        "activated_at",
        "batch",
        "closed_at",
        "closed_reason",
        "deactivated_at",
        "deadlines",
        "intake",
        "interactive_ttl",
        "job_seconds",
        "last_job_completed",
        "last_job_started",
        "max_time",
        "opened_at",
        "started_at",
        "state",
        "timestamps",
    )

    def __init__(
        self,
        *,
        now: float,
        max_time: float,
        interactive_ttl: float,
        idle_open_timeout: float,
        batch: bool = False,
    ) -> None:
        #: a batch (B1-B3): it holds its backend only while it has jobs queued, usage is job time
        self.batch = batch
        #: seconds its jobs ran, summed: a batch's usage (B3)
        self.job_seconds = 0.0
        self.state = SessionState.OPEN
        self.intake = Intake.ACCEPTING
        self.closed_reason: ClosedReason | None = None
        self.max_time = max_time
        self.interactive_ttl = interactive_ttl
        self.deadlines = Deadlines(idle_at_open=now + idle_open_timeout)
        self.opened_at = now
        self.started_at: float | None = None
        self.activated_at: float | None = None
        self.deactivated_at: float | None = None
        self.closed_at: float | None = None
        self.last_job_started: float | None = None
        self.last_job_completed: float | None = None
        #: every state change, in order: ``details()["timestamps"]``
        self.timestamps: list[tuple[str, float]] = [(SessionState.OPEN.value, now)]

    @property
    def accepting_jobs(self) -> bool:
        return self.intake is Intake.ACCEPTING

    @property
    def is_closed(self) -> bool:
        return self.state is SessionState.CLOSED

    # -- events ----------------------------------------------------------------------------------

    def fire(self, event: Event, now: float, *, has_work: bool = False) -> bool:
        """Apply `event` at `now` as the tables say; ``True`` if the state or the intake changed.

        `has_work` feeds the guards: whether the session has jobs queued or running. An event the
        tables do not list for the current state, or whose guard fails, changes nothing.
        """
        if self.state is SessionState.CLOSED or not self._guard(event, has_work):
            return False
        state = HOLD_TRANSITIONS.get((self.state, event))
        if state is not None:
            self._enter(state, now)
            return True
        intake = INTAKE_TRANSITIONS.get((self.intake, event))
        if intake is not None and has_work:
            self.intake, self.closed_reason = intake
            self.deadlines.ittl = math.inf
            return True
        if event in CLOSING_EVENTS:
            self._close(CLOSING_EVENTS[event] or self.closed_reason or ClosedReason.CLOSED, now)
            return True
        return False

    def _guard(self, event: Event, has_work: bool) -> bool:
        """The guards the tables name."""
        if event is Event.ITTL_EXPIRED:
            return not has_work
        if event is Event.CLOSE:
            return self.intake is Intake.ACCEPTING  # closing twice is harmless (S16)
        if event is Event.DRAINED:
            return self.intake is Intake.DRAINING
        return True

    def job_submitted(self) -> None:
        """A job was accepted: the idle-at-open clock stops (S19), an ITTL wait ends (S8)."""
        self.deadlines.idle_at_open = math.inf
        self.deadlines.ittl = math.inf

    def job_started(self, now: float) -> bool:
        """One of its jobs started; ``True`` if it was the first: the session starts (S3, S10)."""
        self.last_job_started = now
        if self.started_at is not None:
            return False
        self.started_at = now
        self.deadlines.max_time = now + self.max_time
        return True

    def job_ended(self, now: float, *, ran_for: float) -> None:
        """One of its jobs that ran for `ran_for` seconds has ended."""
        self.last_job_completed = now
        self.job_seconds += ran_for

    def out_of_work(self, now: float) -> bool:
        """Nothing is queued or running any more; ``True`` if that closed the session.

        A draining session closes at once, without waiting out the ITTL (S12); an active one
        keeps its backend for the ITTL (S8).
        """
        if self.intake is Intake.DRAINING:
            return self.fire(Event.DRAINED, now)
        if self.state is SessionState.ACTIVE:
            self.deadlines.ittl = now + self.interactive_ttl
        return False

    def tick(self, now: float, *, has_work: bool) -> Event | None:
        """Act on every clock that has run out by `now`; the event that moved the session, if any."""
        moved = None
        while (event := self.deadlines.expired(now)) is not None:
            if event is Event.ITTL_EXPIRED:
                self.deadlines.ittl = math.inf
            if self.fire(event, now, has_work=has_work):
                moved = event
        return moved

    # -- what users read -------------------------------------------------------------------------

    def usage_time(self, now: float, *, running: bool) -> float:
        """Seconds from the first job's start to the last of inactive, closed, last completion (S18);
        for a batch, the seconds its jobs ran (B3)."""
        if self.batch:
            return self.job_seconds
        if self.started_at is None:
            return 0.0
        if self.state is SessionState.ACTIVE or running:
            return now - self.started_at
        ends = [t for t in (self.deactivated_at, self.closed_at, self.last_job_completed) if t is not None]
        return max(ends, default=self.started_at) - self.started_at

    def active_timeout(self, now: float) -> float:
        """Seconds of max_time left, or the whole of it before the session starts (S18)."""
        if self.started_at is None:
            return self.max_time
        if self.state is SessionState.CLOSED:
            return max(0.0, self.max_time - max(0.0, (self.closed_at or now) - self.started_at))
        return max(0.0, self.deadlines.max_time - now)

    # -- moves -----------------------------------------------------------------------------------

    def _enter(self, state: SessionState, now: float) -> None:
        if state is SessionState.ACTIVE:
            self.activated_at = now
        elif state is SessionState.INACTIVE:
            self.deactivated_at = now
        self.state = state
        self.timestamps.append((state.value, now))

    def _close(self, reason: ClosedReason, now: float) -> None:
        self.intake = Intake.CLOSED
        self.closed_reason = reason
        self.deadlines.clear()
        self.closed_at = now
        self._enter(SessionState.CLOSED, now)
