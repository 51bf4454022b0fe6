"""Random scripts against the whole service, checking the invariants every run must keep.

Hypothesis draws scripts of open / submit / cancel / close / root-cancel / time jumps over a few
backends, with dedicated sessions, batches (B1-B3), abort-on-failure sessions (F1), job limits
(L1) and transient failures retried by the backend (R1); each script runs on a virtual clock and
must keep, whatever the order:

* every accepted job ends in exactly one of DONE, ERROR, CANCELLED (SPEC J4), consistent with
  what ``result()`` does;
* every waiter is woken: no ``result()`` call is left hanging (J4);
* at most ``concurrency`` jobs run at once on a backend;
* a dedicated session's jobs never run beside another session's or a job-mode job (S7; a
  batch's may, B2);
* a job that is refused at submit time was never queued (S15).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qmux
from qmux.testing import Execution, ScriptedBackend, job

BACKENDS = (("q1", 1), ("q2", 1), ("sim", 2))
#: how a session is opened: its mode and policies
KINDS = {
    "dedicated": {},
    "batch": {"mode": "batch"},
    "abort": {"failure_policy": "abort"},
    "limit": {"max_jobs": 2},
    "batch_abort_limit": {"mode": "batch", "failure_policy": "abort", "max_jobs": 3},
}

_op = st.one_of(
    st.tuples(
        st.just("open"),
        st.integers(0, len(BACKENDS) - 1),
        st.sampled_from([None, 30, 120]),
        st.sampled_from(sorted(KINDS)),
    ),
    st.tuples(
        st.just("submit"),
        st.integers(0, 7),
        st.sampled_from([0.5, 2, 7, 40]),
        st.sampled_from(["ok", "fail", "transient"]),
    ),
    st.tuples(st.just("job_mode"), st.integers(0, len(BACKENDS) - 1), st.sampled_from([1, 5])),
    st.tuples(st.just("cancel_job"), st.integers(0, 40)),
    st.tuples(st.just("close"), st.integers(0, 7)),
    st.tuples(st.just("cancel"), st.integers(0, 7)),
    st.tuples(st.just("cancel_root"), st.integers(0, 7)),
    st.tuples(st.just("wait"), st.sampled_from([0, 1, 4, 11, 30])),
)


class Flaky(ScriptedBackend):
    """A scripted backend whose ``{"transient": true}`` jobs fail transiently on their first run (R1)."""

    runs: Counter[str]

    def __attrs_post_init__(self) -> None:
        self.runs = Counter()

    async def execute(self, request: qmux.JobRequest) -> object:
        self.runs[request.job_id] += 1
        if request.inputs.get("transient") and self.runs[request.job_id] == 1:
            await trio.sleep(0.5)
            raise qmux.TransientBackendError("busy")
        return await super().execute(request)


def _check_executions(backend: ScriptedBackend, concurrency: int, dedicated: set[str]) -> None:
    runs = backend.executions
    for run in runs:
        assert run.ended is not None, f"{run.job_id} never ended"
        at_its_start = [other for other in runs if other.started <= run.started < (other.ended or 0)]
        assert len(at_its_start) <= concurrency, f"more than {concurrency} jobs at once on {backend.name}"
        for other in (other for other in runs if _overlap(run, other)):
            if other is not run and (run.session_id in dedicated or other.session_id in dedicated):
                assert run.session_id == other.session_id, f"{run.session_id} interleaved with {other.session_id}"


def _overlap(a: Execution, b: Execution) -> bool:
    assert a.ended is not None and b.ended is not None
    return a.started < b.ended and b.started < a.ended


async def _run_script(script: list[tuple[Any, ...]]) -> None:
    backends = [
        Flaky(name, qmux.BackendConfig(interactive_ttl=10, max_ttl=600, concurrency=slots, retries=1, retry_backoff=1))
        for name, slots in BACKENDS
    ]
    sessions: list[qmux.Session] = []
    dedicated: set[str] = set()
    jobs: list[qmux.Job] = []
    outcomes: dict[str, str] = {}

    async def wait_for(j: qmux.Job) -> None:
        try:
            await j.result()
        except qmux.JobCancelledError:
            outcomes[j.job_id] = "CANCELLED"
        except qmux.JobFailedError:
            outcomes[j.job_id] = "ERROR"
        else:
            outcomes[j.job_id] = "DONE"

    with trio.fail_after(100_000):  # virtual seconds: a hang shows up as an error, never as a stuck run
        async with trio.open_nursery() as waiters, qmux.open_service(backends) as service:
            for op in script:
                match op:
                    case ("open", b, max_time, kind):
                        opened = qmux.Session(service=service, backend=BACKENDS[b][0], max_time=max_time, **KINDS[kind])
                        sessions.append(opened)
                        if "batch" not in kind:
                            dedicated.add(opened.session_id)
                    case ("submit", s, seconds, how) if sessions:
                        session = sessions[s % len(sessions)]
                        queued_before = service.backend(session.backend_name).pending_jobs
                        inputs = job(seconds, fail="x" if how == "fail" else None)
                        inputs["transient"] = how == "transient"
                        try:
                            submitted = await session.run("script", inputs)
                        except qmux.SessionClosedError:
                            assert service.backend(session.backend_name).pending_jobs <= queued_before
                        else:
                            jobs.append(submitted)
                            waiters.start_soon(wait_for, submitted)
                    case ("job_mode", b, seconds):
                        submitted = await service.backend(BACKENDS[b][0]).run("script", job(seconds))
                        jobs.append(submitted)
                        waiters.start_soon(wait_for, submitted)
                    case ("cancel_job", j) if jobs:
                        await jobs[j % len(jobs)].cancel()
                    case ("close", s) if sessions:
                        await sessions[s % len(sessions)].close()
                    case ("cancel", s) if sessions:
                        await sessions[s % len(sessions)].cancel()
                    case ("cancel_root", s) if sessions:
                        session = sessions[s % len(sessions)]
                        try:
                            root = await service.job(session.session_id)
                        except qmux.JobNotFoundError:
                            pass
                        else:
                            await root.cancel()
                    case ("wait", seconds):
                        await trio.sleep(seconds)
                    case _:
                        pass
            for session in sessions:
                await session.close()
        # the service has drained; every waiter has returned, or the nursery would not have exited
    assert len(outcomes) == len(jobs), "a waiter was never woken"
    for j in jobs:
        status = await j.status()
        assert status in ("DONE", "ERROR", "CANCELLED")
        assert outcomes[j.job_id] == status, f"{j.job_id}: status {status} but result() said {outcomes[j.job_id]}"
    for backend, (_, slots) in zip(backends, BACKENDS, strict=True):
        _check_executions(backend, slots, dedicated)
        ran = {e.job_id for e in backend.executions}
        for j in jobs:
            if j.backend_name == backend.name and outcomes[j.job_id] == "DONE":
                assert j.job_id in ran


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_op, min_size=1, max_size=40))
def test_J4_S7_random_scripts_keep_every_invariant(script: list[tuple[Any, ...]]) -> None:
    trio.run(_run_script, script, clock=trio.testing.MockClock(autojump_threshold=0))
