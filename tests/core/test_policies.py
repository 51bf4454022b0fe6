"""Batches and session policies beyond IBM's session rules: SPEC B1-B3, F1, L1, R1.

Each rule is checked in process and over HTTP (`service_factory`), on the mock clock.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import trio
from attrs import define, field

import qmux
from qmux.testing import ServiceFactory, job, qpu

Clock = trio.testing.MockClock


@define(eq=False)
class Flaky:
    """Jobs fail transiently (`qmux.TransientBackendError`) for their first ``transient`` runs."""

    name: str
    config: qmux.BackendConfig
    runs: Counter[str] = field(factory=Counter)
    order: list[str] = field(factory=list)

    async def execute(self, request: qmux.JobRequest) -> object:
        inputs: dict[str, Any] = request.inputs
        self.runs[request.job_id] += 1
        self.order.append(request.job_id)
        await trio.sleep(float(inputs.get("seconds", 1.0)))
        if self.runs[request.job_id] <= int(inputs.get("transient", 0)):
            raise qmux.TransientBackendError(f"device busy (run {self.runs[request.job_id]})")
        if inputs.get("fail"):
            raise RuntimeError(inputs["fail"])
        return inputs.get("value", "ok")


def flaky(retries: int = 2, backoff: float = 1.0, **config: Any) -> Flaky:
    settings: dict[str, Any] = {
        "interactive_ttl": 10.0,
        "max_ttl": 3600.0,
        "retries": retries,
        "retry_backoff": backoff,
    }
    settings.update(config)
    return Flaky("flaky", qmux.BackendConfig(**settings))


# -- B1-B3: batches --------------------------------------------------------------------------------


async def test_B1_a_batch_opens_like_a_session_in_every_form(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("q")]) as service:
        async with qmux.Batch(service=service, backend="q", max_time="10m") as batch:
            assert isinstance(batch, qmux.Session)
            details = await batch.details()
            assert (details["mode"], details["max_time"]) == ("batch", 600.0)
            assert await (await batch.run("script", job(1, value=1))).result() == 1
        assert await batch.status() == "Closed"
        by_hand = qmux.Session(service=service, backend=service.backend("q"), mode="batch")
        assert (await by_hand.details())["mode"] == "batch"
        await by_hand.cancel()
        assert await by_hand.status() == "Closed"


async def test_B2_a_batch_never_holds_its_backend_idle(autojump_clock: Clock, service_factory: ServiceFactory) -> None:
    async with service_factory([qpu("q")]) as service:
        batch = qmux.Batch(service=service, backend="q")
        first = await batch.run("script", job(1))
        await trio.sleep(0.5)
        other = await service.backend("q").run("script", job(1, value="job mode"))
        await first.result()
        start = trio.current_time()
        assert await other.result() == "job mode"
        assert trio.current_time() - start == pytest.approx(1.0), "the job-mode job ran at once, no ITTL wait"
        dedicated = qmux.Session(service=service, backend="q")
        await (await dedicated.run("script", job(1))).result()
        waiting = await service.backend("q").run("script", job(1))
        start = trio.current_time()
        await waiting.result()
        assert trio.current_time() - start == pytest.approx(11.0), "a dedicated session holds it for its ITTL (S8)"
        await batch.close()
        await dedicated.close()


async def test_B2_an_active_batchs_queued_jobs_go_before_job_mode(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("q")]) as service:
        batch = qmux.Batch(service=service, backend="q")
        first = await batch.run("script", job(2))
        await trio.sleep(0.5)
        job_mode = await service.backend("q").run("script", job(1))
        await trio.sleep(0.5)
        second = await batch.run("script", job(1))
        await job_mode.result()
        ended = trio.current_time()
        await first.result()
        metrics = await second.metrics()
        assert metrics["timestamps"]["finished"] is not None
        assert ended == pytest.approx(4.0), "the batch's second job (2-3 s) went before the job-mode job (3-4 s)"
        assert (await batch.details())["state"] == "active"
        await batch.close()


async def test_B2_a_batch_deactivates_after_its_ittl_with_nothing_queued_or_running(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("q")]) as service:
        batch = qmux.Batch(service=service, backend="q")
        await (await batch.run("script", job(1))).result()
        await trio.sleep(9.5)
        assert (await batch.details())["state"] == "active"
        await trio.sleep(1)
        details = await batch.details()
        assert details["state"] == "inactive"
        assert [stamp["status"] for stamp in details["timestamps"]] == ["open", "active", "inactive"]
        await (await batch.run("script", job(1))).result()
        assert (await batch.details())["state"] == "active", "its next job makes it active again (S9)"
        await batch.close()


async def test_B3_a_batchs_usage_counts_only_its_jobs_run_time(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("q")]) as service:
        batch = qmux.Batch(service=service, backend="q")
        await (await batch.run("script", job(3))).result()
        await trio.sleep(5)
        await (await batch.run("script", job(3))).result()
        await batch.close()
        assert (await batch.details())["usage_time"] == pytest.approx(6.0), "not the 11 s of wall clock"


# -- F1: failure policy ----------------------------------------------------------------------------


async def test_F1_abort_closes_the_session_on_the_first_failed_job(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("q", concurrency=2)]) as service:
        session = qmux.Session(service=service, backend="q", failure_policy="abort")
        assert (await session.details())["failure_policy"] == "abort"
        failing = await session.run("script", job(1, fail="boom"))
        running = await session.run("script", job(3, value="finishes"))
        queued = await session.run("script", job(1))
        with pytest.raises(qmux.JobFailedError, match="boom"):
            await failing.result()
        with pytest.raises(qmux.JobFailedError, match=failing.job_id):
            await queued.result()
        assert await queued.status() == "ERROR"
        assert await running.result() == "finishes", "running jobs finish (S13)"
        details = await session.details()
        assert (details["state"], details["closed_reason"]) == ("closed", "job_failed")
        with pytest.raises(qmux.SessionClosedError, match=failing.job_id) as refused:
            await session.run("script", job(1))
        assert refused.value.reason is qmux.ClosedReason.JOB_FAILED


async def test_F1_continue_is_the_default_and_a_cancelled_job_is_not_a_failure(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("q")]) as service:
        default = qmux.Session(service=service, backend="q")
        assert (await default.details())["failure_policy"] == "continue"
        with pytest.raises(qmux.JobFailedError):
            await (await default.run("script", job(1, fail="boom"))).result()
        assert await (await default.run("script", job(1, value=2))).result() == 2, "J3: the session goes on"
        await default.close()
        aborting = qmux.Session(service=service, backend="q", failure_policy="abort")
        await (await aborting.run("script", job(1))).result()
        cancelled = await aborting.run("script", job(5))
        await trio.sleep(1)
        await cancelled.cancel()
        with pytest.raises(qmux.JobCancelledError):
            await cancelled.result()
        assert await (await aborting.run("script", job(1, value=3))).result() == 3
        await aborting.close()


@pytest.mark.parametrize("bad", ["stop", "", None, 1])
async def test_F1_a_bad_failure_policy_is_refused_naming_what_is_allowed(
    autojump_clock: Clock, service_factory: ServiceFactory, bad: Any
) -> None:
    async with service_factory([qpu("q")]) as service:
        with pytest.raises(qmux.InvalidInputError, match=r"failure_policy=.*continue, abort"):
            qmux.Session(service=service, backend="q", failure_policy=bad)


# -- L1: max_jobs ----------------------------------------------------------------------------------


async def test_L1_a_session_accepts_max_jobs_then_closes_when_drained(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    async with service_factory([qpu("q")]) as service:
        session = qmux.Session(service=service, backend="q", max_jobs=2)
        assert (await session.details())["max_jobs"] == 2
        first = await session.run("script", job(2, value=1))
        assert await session.status() in ("Pending", "In progress, accepting new jobs")
        second = await session.run("script", job(2, value=2))
        assert await session.status() == "In progress, not accepting new jobs"
        with pytest.raises(qmux.SessionClosedError, match="max_jobs=2") as refused:
            await session.run("script", job(1))
        assert refused.value.reason is qmux.ClosedReason.MAX_JOBS
        assert [await first.result(), await second.result()] == [1, 2]
        details = await session.details()
        assert (details["state"], details["closed_reason"]) == ("closed", "max_jobs")
        assert details["closed_at"] == details["last_job_completed"], "closed at once when drained (S12)"


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
async def test_L1_a_bad_max_jobs_is_refused_naming_the_value(
    autojump_clock: Clock, service_factory: ServiceFactory, bad: Any
) -> None:
    async with service_factory([qpu("q")]) as service:
        with pytest.raises(qmux.InvalidInputError, match=r"max_jobs=.*positive whole number"):
            qmux.Session(service=service, backend="q", max_jobs=bad)


# -- R1: retries of transient failures -------------------------------------------------------------


async def test_R1_a_transient_failure_runs_again_with_backoff_keeping_its_id_and_place(autojump_clock: Clock) -> None:
    backend = flaky(retries=2, backoff=1.0)
    async with qmux.open_service([backend]) as service:
        session = qmux.Session(service=service, backend="flaky")
        retried = await session.run("script", {"seconds": 1, "transient": 2, "value": "third time"})
        after = await session.run("script", {"seconds": 1, "value": "next"})
        start = trio.current_time()
        assert await retried.result() == "third time"
        assert trio.current_time() - start == pytest.approx(1 + 1 + 1 + 2 + 1), "runs 1 s, waits 1 s, then 2 s"
        assert (await retried.metrics())["attempts"] == 3
        assert await after.result() == "next"
        assert backend.order == [retried.job_id] * 3 + [after.job_id], "it kept its place at the head (R1)"
        await session.close()


async def test_R1_retries_run_out_and_other_errors_fail_at_once(autojump_clock: Clock) -> None:
    backend = flaky(retries=1, backoff=0.5)
    async with qmux.open_service([backend]) as service:
        exhausted = await service.backend("flaky").run("script", {"transient": 5})
        with pytest.raises(qmux.JobFailedError, match=r"after 2 attempts.*device busy"):
            await exhausted.result()
        assert (await exhausted.metrics())["attempts"] == 2
        other = await service.backend("flaky").run("script", {"fail": "not transient", "transient": 0})
        with pytest.raises(qmux.JobFailedError, match="not transient"):
            await other.result()
        assert (await other.metrics())["attempts"] == 1


async def test_R1_retries_never_outlive_max_time(autojump_clock: Clock) -> None:
    backend = flaky(retries=3, backoff=10.0)
    async with qmux.open_service([backend]) as service:
        session = qmux.Session(service=service, backend="flaky", max_time="5s")
        doomed = await session.run("script", {"seconds": 1, "transient": 1})
        with pytest.raises(qmux.JobFailedError, match="max_time"):
            await doomed.result()
        assert (await doomed.metrics())["attempts"] == 1
        assert trio.current_time() < 5.0


@pytest.mark.parametrize(("key", "bad"), [("retries", -1), ("retries", 1.5), ("retry_backoff", -0.5)])
def test_R1_bad_retry_settings_are_refused_naming_the_value(key: str, bad: Any) -> None:
    with pytest.raises(qmux.InvalidInputError, match=f"{key}="):
        qmux.BackendConfig(**{key: bad})


async def test_B2_a_batchs_jobs_never_run_beside_a_dedicated_sessions(
    autojump_clock: Clock, service_factory: ServiceFactory
) -> None:
    backend = qpu("sim", concurrency=2)
    async with service_factory([backend]) as service:
        session = qmux.Session(service=service, backend="sim")
        long = await session.run("script", job(20))
        await trio.sleep(1)
        await session.cancel()  # it lets go of the backend; its running job finishes (S13)
        batch = qmux.Batch(service=service, backend="sim")
        batched = await batch.run("script", job(1))
        await long.result()
        await batched.result()
        assert backend.executions[-1].started == pytest.approx(20), "after the session's job, not beside it"
        await batch.close()
