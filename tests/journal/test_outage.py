"""A journal outage loses nothing: what changed while the store refused writes is written once it
takes them again (SPEC J4: every accepted job ends in exactly one terminal state, journal included)."""

from __future__ import annotations

from collections.abc import Sequence

import trio
import trio.testing

import qmux
from qmux.journal import JobSnapshot, MemoryStore, SessionSnapshot
from qmux.testing import job, qpu

Clock = trio.testing.MockClock


class UnpluggedStore(MemoryStore):
    """A store that refuses every write while `unplugged` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.unplugged = False
        self.refused = 0

    def write(self, sessions: Sequence[SessionSnapshot], jobs: Sequence[JobSnapshot]) -> None:
        if self.unplugged:
            self.refused += 1
            raise qmux.StorageError("the journal's disk is unplugged")
        super().write(sessions, jobs)


async def test_J4_a_job_that_ends_during_an_outage_is_journaled_once_the_store_is_back(autojump_clock: Clock) -> None:
    store = UnpluggedStore()
    async with qmux.open_service([qpu("a")], journal=store) as service:
        session = qmux.Session(service=service, backend="a")
        running = await session.run("script", job(10, value="done"))
        await trio.sleep(1)
        assert store.jobs[running.job_id].status == "RUNNING"
        store.unplugged = True
        assert await running.result() == "done"  # it finished while nothing could be written
        await trio.sleep(5)
        assert store.jobs[running.job_id].status == "RUNNING" and store.refused >= 2, "retried, not dropped"
        store.unplugged = False
        await trio.sleep(31)  # the writer's backoff is at most 30 s
        assert store.jobs[running.job_id].status == "DONE"
        assert store.sessions[session.session_id].last_job_completed is not None
        await session.close()
