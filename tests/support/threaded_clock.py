"""The virtual clock for tests whose service does real I/O in worker threads (a journal file, a database).

pytest-trio's ``autojump_clock`` jumps to the next deadline as soon as every task is blocked,
and a task waiting on ``trio.to_thread`` counts as blocked: the clock would leap over timeouts
while a journal batch is still being committed, and the rules under test would see time pass
that never passed. `threads_hold_the_clock` turns that clock's own autojump off and jumps it
instead only when every task is blocked and no worker thread is running: virtual time stays
exact (each test may assert it), whatever the threads take in real time.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest
import trio
import trio.lowlevel
import trio.testing

__all__ = ["threads_hold_the_clock"]

#: real seconds to wait before looking again when nothing at all is scheduled (no busy loop)
_NOTHING_SCHEDULED_PAUSE = 0.01


async def _jump_when_idle(clock: trio.testing.MockClock) -> None:
    while True:
        await trio.testing.wait_all_tasks_blocked()
        if trio.testing.active_thread_count():
            await trio.testing.wait_all_threads_completed()
            continue
        jump = trio.lowlevel.current_statistics().seconds_to_next_deadline
        if 0 < jump < math.inf:
            clock.jump(jump)
        elif jump == math.inf:  # waiting on something outside Trio's clock, or on nothing
            await trio.testing.wait_all_tasks_blocked(cushion=_NOTHING_SCHEDULED_PAUSE)
        else:
            await trio.lowlevel.checkpoint()


@pytest.fixture
async def threads_hold_the_clock(autojump_clock: trio.testing.MockClock) -> AsyncIterator[None]:
    """``autojump_clock``, made to wait for worker threads before it jumps."""
    autojump_clock.autojump_threshold = math.inf
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_jump_when_idle, autojump_clock)
        yield
        nursery.cancel_scope.cancel()
