"""Waiting for a one-time happening without a `trio.Event`: the waiters are parked tasks in a list.

A job's end (its submitter awaits it) and a journal batch's commit (every submitter in it awaits
it) each happen once. An Event for each would be two more objects for the cyclic collector to
scan for as long as the job is kept, and a call more per wake-up. Instead the owner keeps a
plain list of the tasks waiting (``None`` until the first waits), and:

    await trio.lowlevel.wait_task_rescheduled(enlist(waiters))   # the waiter, after checking it must
    wake(waiters)                                                  # the owner, once, after detaching the list

`enlist` is synchronous, so a wait is one coroutine (Trio's), not two.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

__all__ = ["enlist", "wake"]


def enlist(waiters: list[trio.lowlevel.Task]) -> Callable[[object], trio.lowlevel.Abort]:
    """Add the current task to `waiters`; return the abort function that takes it out if it is cancelled."""
    task = trio.lowlevel.current_task()
    waiters.append(task)

    def abort(_: object) -> trio.lowlevel.Abort:
        waiters.remove(task)  # cancelled before the happening: `wake` must not reschedule it
        return trio.lowlevel.Abort.SUCCEEDED

    return abort


def wake(waiters: list[trio.lowlevel.Task] | None) -> None:
    """Reschedule every task in `waiters` (the owner has already let go of the list)."""
    if waiters is not None:
        for task in waiters:
            trio.lowlevel.reschedule(task)
