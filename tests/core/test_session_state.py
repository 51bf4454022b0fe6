"""The session state machine alone: its table, its guards and its clocks, on an explicit `now`.

Hypothesis drives `SessionMachine` as the actor would (jobs queued, granted, started, ended;
close, cancel, root cancel; time passing) and checks after every step the invariants the session
rules rest on. The rule tests (test_session_rules.py) check the same rules through the whole
service; these find the orders of events nobody thought to write down.
"""

from __future__ import annotations

import itertools
import math

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from qmux import ClosedReason
from qmux._core import SessionState
from qmux._core._session_state import (
    CLOSING_EVENTS,
    HOLD_TRANSITIONS,
    INTAKE_TRANSITIONS,
    Event,
    Intake,
    SessionMachine,
)

MAX_TIME, ITTL, IDLE_OPEN = 100.0, 10.0, 50.0


def _machine(now: float = 0.0) -> SessionMachine:
    return SessionMachine(now=now, max_time=MAX_TIME, interactive_ttl=ITTL, idle_open_timeout=IDLE_OPEN)


class SessionMachineRules(RuleBasedStateMachine):
    """The actor's part is modelled by two counters: jobs queued and jobs running."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.machine = _machine()
        self.queued = 0
        self.running = 0
        self.history_when_closed: list[tuple[str, float]] | None = None
        self.submitted = False

    @property
    def has_work(self) -> bool:
        return bool(self.queued or self.running)

    # -- what happens --------------------------------------------------------------------------

    @precondition(lambda self: self.machine.accepting_jobs)
    @rule()
    def submit(self) -> None:
        self.machine.job_submitted()
        self.queued += 1
        self.submitted = True

    @precondition(lambda self: self.queued and not self.machine.is_closed)
    @rule()
    def granted_and_started(self) -> None:
        self.machine.fire(Event.GRANTED, self.now, has_work=self.has_work)
        if self.machine.state is SessionState.ACTIVE:
            self.queued -= 1
            self.running += 1
            self.machine.job_started(self.now)

    @precondition(lambda self: self.running)
    @rule()
    def job_ends(self) -> None:
        self.running -= 1
        self.machine.job_ended(self.now, ran_for=0.0)
        if not self.machine.is_closed and not self.has_work:
            self.machine.out_of_work(self.now)

    @precondition(lambda self: self.queued and not self.machine.is_closed)
    @rule()
    def queued_job_cancelled(self) -> None:
        self.queued -= 1
        if not self.has_work:
            self.machine.out_of_work(self.now)

    @rule(event=st.sampled_from([Event.CLOSE, Event.CANCEL, Event.ROOT_JOB_CANCELLED, Event.SHUTDOWN]))
    def user_event(self, event: Event) -> None:
        self.machine.fire(event, self.now, has_work=self.has_work)
        if self.machine.is_closed:
            self.queued = 0  # the actor fails its queued jobs; running ones finish

    @rule(seconds=st.sampled_from([0.5, ITTL - 0.001, ITTL, 30.0, MAX_TIME]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        self.machine.tick(self.now, has_work=self.has_work)
        if self.machine.is_closed:
            self.queued = 0

    # -- what must always hold -----------------------------------------------------------------

    @invariant()
    def closed_is_for_good(self) -> None:
        machine = self.machine
        if self.history_when_closed is not None:
            assert machine.is_closed
            assert machine.timestamps == self.history_when_closed
        if machine.is_closed:
            self.history_when_closed = list(machine.timestamps)
            assert machine.intake is Intake.CLOSED and not machine.accepting_jobs
            assert machine.closed_reason is not None and machine.closed_at is not None
            assert math.isinf(machine.deadlines.earliest)

    @invariant()
    def history_records_each_change_once_in_time_order(self) -> None:
        statuses = [status for status, _ in self.machine.timestamps]
        times = [at for _, at in self.machine.timestamps]
        assert statuses[0] == "open"
        assert all(a != b for a, b in itertools.pairwise(statuses))
        assert times == sorted(times)
        assert statuses[-1] == self.machine.state.value

    @invariant()
    def S12_draining_means_closed_by_its_user_with_jobs_left(self) -> None:
        if self.machine.intake is Intake.DRAINING:
            assert self.has_work, "a draining session with nothing left must have closed (S12)"
            assert self.machine.closed_reason is ClosedReason.CLOSED
            assert math.isinf(self.machine.deadlines.ittl)

    @invariant()
    def S8_the_ittl_runs_only_for_an_active_session_without_work(self) -> None:
        if not math.isinf(self.machine.deadlines.ittl):
            assert self.machine.state is SessionState.ACTIVE and not self.has_work

    @invariant()
    def S10_no_session_outlives_its_max_time(self) -> None:
        machine = self.machine
        if machine.started_at is not None and not machine.is_closed:
            assert machine.deadlines.max_time == machine.started_at + MAX_TIME
            assert self.now < machine.deadlines.max_time

    @invariant()
    def S19_idle_at_open_runs_until_the_first_job_is_received(self) -> None:
        machine = self.machine
        if machine.is_closed or self.submitted:
            assert math.isinf(machine.deadlines.idle_at_open)
        else:
            assert machine.deadlines.idle_at_open == IDLE_OPEN


TestSessionMachineRules = SessionMachineRules.TestCase
TestSessionMachineRules.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)


# -- the table, read row by row --------------------------------------------------------------------


def test_S9_every_hold_transition_is_in_the_table_and_stamped_once() -> None:
    for (state, event), target in HOLD_TRANSITIONS.items():
        machine = _machine()
        machine.state = state
        assert machine.fire(event, 5.0), (state, event)
        assert machine.state is target
        assert machine.timestamps[-1] == (target.value, 5.0)


def test_S12_close_drains_with_work_and_closes_at_once_without() -> None:
    ((intake, event), (target, reason)) = next(iter(INTAKE_TRANSITIONS.items()))
    assert (intake, event) == (Intake.ACCEPTING, Event.CLOSE)
    draining = _machine()
    assert draining.fire(event, 1.0, has_work=True)
    assert (draining.intake, draining.closed_reason, draining.state) == (target, reason, SessionState.OPEN)
    assert not draining.fire(Event.CLOSE, 2.0, has_work=True), "closing twice is harmless (S16)"
    assert draining.out_of_work(3.0)
    assert (draining.state, draining.closed_reason, draining.closed_at) == (SessionState.CLOSED, reason, 3.0)
    idle = _machine()
    assert idle.fire(Event.CLOSE, 1.0, has_work=False)
    assert idle.state is SessionState.CLOSED and idle.closed_reason is ClosedReason.CLOSED


def test_S19_every_closing_event_gives_the_reason_users_are_told() -> None:
    for event, reason in CLOSING_EVENTS.items():
        if event in (Event.CLOSE, Event.DRAINED):
            continue  # guarded: read in the test above
        machine = _machine()
        assert machine.fire(event, 1.0, has_work=True)
        assert machine.closed_reason is reason and machine.state is SessionState.CLOSED
        assert not machine.fire(Event.GRANTED, 2.0), "nothing moves a closed session"


def test_S8_S9_an_active_session_without_work_deactivates_exactly_one_ittl_later() -> None:
    machine = _machine()
    machine.fire(Event.GRANTED, 0.0, has_work=True)
    machine.job_started(0.0)
    machine.job_ended(4.0, ran_for=4.0)
    machine.out_of_work(4.0)
    assert not machine.fire(Event.ITTL_EXPIRED, 5.0, has_work=True), "the guard: a session with work keeps its hold"
    assert not machine.tick(4.0 + ITTL - 1e-9, has_work=False)
    assert machine.state is SessionState.ACTIVE
    assert machine.tick(4.0 + ITTL, has_work=False)
    assert machine.state is SessionState.INACTIVE and machine.deactivated_at == 4.0 + ITTL


def test_S10_max_time_runs_from_the_first_start_and_wins_over_the_ittl() -> None:
    machine = _machine()
    machine.fire(Event.GRANTED, 3.0, has_work=True)
    assert machine.job_started(3.0) and not machine.job_started(5.0)
    machine.deadlines.ittl = 3.0 + MAX_TIME  # both run out at once: max_time closes (S10)
    assert machine.tick(3.0 + MAX_TIME, has_work=False)
    assert machine.closed_reason is ClosedReason.MAX_TIME
    assert machine.active_timeout(500.0) == 0.0
