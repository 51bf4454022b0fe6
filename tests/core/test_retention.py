"""Retention is per owner (SPEC V1): one tenant's load never evicts another tenant's records."""

from __future__ import annotations

import pytest
import trio

import qmux
from qmux.testing import job, qpu

Clock = trio.testing.MockClock


async def test_V1_one_owners_finished_jobs_never_evict_anothers(autojump_clock: Clock) -> None:
    settings = qmux.ServiceSettings(retain_finished=3)
    async with qmux.open_service([qpu("a", concurrency=4)], settings=settings) as service:
        mine = [await service.submit_job("a", "script", job(1, value=i), owner="alice") for i in range(3)]
        for record in mine:
            await record.wait()
        theirs = []
        for i in range(20):
            theirs.append(await service.submit_job("a", "script", job(1, value=i), owner="bob"))
            await theirs[-1].wait()
        for i, record in enumerate(mine):
            assert await (await service.job(record.job_id)).result() == i, "bob's jobs evicted alice's"
        assert service.stats()["jobs"] == 6, "each owner keeps its own newest three"
        assert await (await service.job(theirs[-1].job_id)).result() == 19
        with pytest.raises(qmux.JobNotFoundError):
            await service.job(theirs[0].job_id)  # bob's oldest went: his own retention


async def test_V1_one_owners_closed_sessions_never_evict_anothers(autojump_clock: Clock) -> None:
    settings = qmux.ServiceSettings(retain_finished=2)
    async with qmux.open_service([qpu("a")], settings=settings) as service:
        kept = service.open_session_port("a", owner="alice")
        await kept.close()
        for _ in range(10):
            other = service.open_session_port("a", owner="bob")
            await other.close()
        assert (await (await service.session(kept.session_id)).details())["state"] == "closed"
        assert service.stats()["finished_sessions"] == 3
