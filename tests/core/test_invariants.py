"""Random scripts against the whole service, checking the invariants every run must keep.

Hypothesis draws scripts of open / submit / cancel / close / root-cancel / time jumps over a few
backends; each script runs on a virtual clock and must keep, whatever the order:

* every accepted job ends in exactly one of DONE, ERROR, CANCELLED (SPEC J4), consistent with
  what ``result()`` does;
* every waiter is woken: no ``result()`` call is left hanging (J4);
* at most ``concurrency`` jobs run at once on a backend;
* a session's jobs never run beside another session's or a job-mode job (S7);
* a job that is refused at submit time was never queued (S15).
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qmux
from qmux.testing import Execution, ScriptedBackend, job

BACKENDS = (("q1", 1), ("q2", 1), ("sim", 2))

_op = st.one_of(
    st.tuples(st.just("open"), st.integers(0, len(BACKENDS) - 1), st.sampled_from([None, 30, 120])),
    st.tuples(st.just("submit"), st.integers(0, 7), st.sampled_from([0.5, 2, 7, 40]), st.booleans()),
    st.tuples(st.just("job_mode"), st.integers(0, len(BACKENDS) - 1), st.sampled_from([1, 5])),
    st.tuples(st.just("cancel_job"), st.integers(0, 40)),
    st.tuples(st.just("close"), st.integers(0, 7)),
    st.tuples(st.just("cancel"), st.integers(0, 7)),
    st.tuples(st.just("cancel_root"), st.integers(0, 7)),
    st.tuples(st.just("wait"), st.sampled_from([0, 1, 4, 11, 30])),
)


def _check_executions(backend: ScriptedBackend, concurrency: int) -> None:
    runs = backend.executions
    for run in runs:
        assert run.ended is not None, f"{run.job_id} never ended"
        at_its_start = [other for other in runs if other.started <= run.started < (other.ended or 0)]
        assert len(at_its_start) <= concurrency, f"more than {concurrency} jobs at once on {backend.name}"
        for other in (other for other in runs if _overlap(run, other)):
            if other is not run and (run.session_id or other.session_id):
                assert run.session_id == other.session_id, f"{run.session_id} interleaved with {other.session_id}"


def _overlap(a: Execution, b: Execution) -> bool:
    assert a.ended is not None and b.ended is not None
    return a.started < b.ended and b.started < a.ended


async def _run_script(script: list[tuple[Any, ...]]) -> None:
    backends = [
        ScriptedBackend(name, qmux.BackendConfig(interactive_ttl=10, max_ttl=600, concurrency=slots))
        for name, slots in BACKENDS
    ]
    sessions: list[qmux.Session] = []
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
                    case ("open", b, max_time):
                        sessions.append(qmux.Session(service=service, backend=BACKENDS[b][0], max_time=max_time))
                    case ("submit", s, seconds, fail) if sessions:
                        session = sessions[s % len(sessions)]
                        queued_before = service.backend(session.backend_name).pending_jobs
                        try:
                            submitted = await session.run("script", job(seconds, fail="x" if fail else None))
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
        _check_executions(backend, slots)
        ran = {e.job_id for e in backend.executions}
        for j in jobs:
            if j.backend_name == backend.name and outcomes[j.job_id] == "DONE":
                assert j.job_id in ran


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_op, min_size=1, max_size=40))
def test_J4_S7_random_scripts_keep_every_invariant(script: list[tuple[Any, ...]]) -> None:
    trio.run(_run_script, script, clock=trio.testing.MockClock(autojump_threshold=0))
