"""``qmux demo`` walks through the seed's paragraphs in order and prints what happens (SPEC P1-P3, S1-S19)."""

from __future__ import annotations

import subprocess
import sys

#: the walkthrough, in the seed's order: each heading, then what must follow it
STEPS = [
    "== Set up to use sessions",
    "fake_sherbrooke  127 qubits  QPU",
    "== Open a session: the Session class",
    "opened; status: Pending",
    "sampler job DONE",
    "counts: {",
    "session status: In progress, accepting new jobs",
    "<ZZ> = ",
    "session.close(); status: Closed",
    "== Open a session: the context manager",
    "Sampler() inside `async with Session(...)` uses session",
    "== Specify a system by name, or pass a backend object",
    "Session(service=service, backend='fake_kyiv') -> fake_kyiv",
    "Session(backend='ibm_nowhere') refused: BackendNotFoundError",
    "== Session length: max_time and the interactive timeout (ITTL)",
    "details()['max_time'] = 1500s, interactive_timeout = 5s",
    "max_time='9h' refused",
    "job 2 DONE",
    "job 3 ERROR",
    "reached its max_time",
    "deactivated: status: Pending",
    "the next job reactivated it: status: In progress, accepting new jobs",
    "state timeline: open +0.00s, active +0.00s, inactive +5.50s, active +6.00s",
    "== Close a session",
    "left the block with two jobs in flight; status: In progress, not accepting new jobs",
    "after the last job, status: Closed",
    "submitting again refused",
    "== When the root job is canceled",
    "job 0 CANCELLED",
    "failed because its root job",
    "== Cancel a session",
    "job1 RUNNING, job2 QUEUED; session.cancel()",
    "job1 DONE",
    "job2 CANCELLED",
    "== Invoke multiple primitives in a session",
    " > Counts: {",
    " > Expectation value: ",
    " > Metadata: {'target_precision': 0.015625",
    "== Job mode: a primitive on a backend, outside any session",
    "session_id=None, counts: {",
    "== Check session status",
    "the four statuses, in order: ['Pending', 'In progress, accepting new jobs', "
    "'In progress, not accepting new jobs', 'Closed']",
    "== Determine session details",
    "interactive_timeout  5.0",
    "== Batches and policies",
    "a batch never holds its backend idle",
    "batch mode='batch': usage_time",
    "failure_policy='abort': a first job DONE",
    "then a 21-qubit job ERROR",
    "the job queued after it ERROR",
    "closed_reason: job_failed",
    "max_jobs=2 after two jobs: In progress, not accepting new jobs",
    "a third job refused: session",
    "== Retries of transient failures (SPEC R1)",
    "fails transiently twice DONE",
    "attempts: 3, same job id each time: True",
    "== Done",
]


def test_demo_walks_through_the_seed_in_order_on_a_virtual_clock() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "qmux", "demo", "--fast"], capture_output=True, text=True, timeout=60, check=False
    )
    assert process.returncode == 0, process.stderr
    out = process.stdout
    position = 0
    for step in STEPS:
        found = out.find(step, position)
        assert found >= 0, f"{step!r} missing (in order) from:\n{out}"
        position = found + len(step)
    assert "[info" not in out and "[debug" not in out  # the demo keeps the library's logs to warnings
    assert process.stderr == ""
