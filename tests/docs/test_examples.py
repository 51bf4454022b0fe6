"""Every script in examples/ runs and prints what it is there to show (one per section of the seed,
and a few beyond it, such as an agent that restarts and finds its work again).

The scripts run on the real clock against the embedded backends, all at once in subprocesses,
so that the whole check takes about as long as the slowest script.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TIMEOUT = 60

#: script -> lines (or fragments) its output must contain, in order
EXPECTED: dict[str, list[str]] = {
    "01_set_up.py": ["fake_sherbrooke: 127 qubits, QPU", "local_simulator: 32 qubits, simulator", "least busy QPU:"],
    "02_open_session_class.py": ["before the first job: Pending", "counts: {", "after close(): Closed"],
    "03_open_context_manager.py": ["both in the session: True", "<ZZ> =", "after the block: Closed"],
    "04_specify_system.py": ["by name: fake_sherbrooke", "by object: fake_", "unknown name refused: no backend"],
    "05_session_length.py": [
        "max_time: 1500s, ITTL: 5s",
        "too long: max_time='9h'",
        "job 2: done",
        "job 3: failed (max_time)",
        "session: Closed",
    ],
    "06_close_session.py": [
        "after the block: In progress, not accepting new jobs",
        "once they finished: Closed",
        "Result2:",
        "after close(): Closed",
    ],
    "07_root_job_canceled.py": [
        "root job is the session id: True",
        "job 0: CANCELLED",
        "job 1: ERROR",
        "job 2: ERROR",
        "later submission refused, reason: root_job_cancelled",
    ],
    "08_cancel_session.py": ["session: Closed", "job1: DONE, ran to completion", "job2: CANCELLED"],
    "09_multiple_primitives.py": [" > Counts: {", " > Expectation value: ", " > Metadata: {'target_precision'"],
    "10_session_status.py": [
        "opened: Pending",
        "after a job: In progress, accepting new jobs",
        "idle past the ITTL: Pending",
        "closed with a job queued: In progress, not accepting new jobs",
        "after its last job: Closed",
    ],
    "11_session_details.py": [
        "id: ",
        "backend_name: fake_",
        "interactive_timeout: 5.0",
        "state: active",
        "timestamps:",
    ],
    "12_backends_from_toml.py": [
        "lab_qpu: 5 qubits, simulator=False",
        "reproducible under the backend's seed: True",
        "too wide, that job alone failed: sampler pub 0: its circuit has 6 qubits",
        "session still: In progress, accepting new jobs",
    ],
    "agent_restart.py": [
        "first life: 3 jobs queued in a session; then the agent crashed",
        "second life: found it again: True",
        "  session.",
        "  job.done",
        "  session.closed",
        "jobs tagged agent-7: 3 ['DONE', 'DONE', 'DONE']",
        "usage: jobs 3 seconds ",
    ],
}


@pytest.fixture(scope="module")
def outputs() -> dict[str, tuple[int, str, str]]:
    """Run every example at once; map each script to (exit code, stdout, stderr)."""
    processes = {
        script.name: subprocess.Popen(
            [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for script in sorted(EXAMPLES.glob("*.py"))
    }
    results: dict[str, tuple[int, str, str]] = {}
    try:
        for name, process in processes.items():
            stdout, stderr = process.communicate(timeout=TIMEOUT)
            results[name] = (process.returncode, stdout, stderr)
    finally:
        for process in processes.values():
            process.kill()
    return results


def test_every_example_is_checked(outputs: dict[str, tuple[int, str, str]]) -> None:
    assert sorted(outputs) == sorted(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs_and_prints_what_it_shows(outputs: dict[str, tuple[int, str, str]], script: str) -> None:
    """P1-P3, S1-S19 as the seed's sections show them, end to end."""
    code, stdout, stderr = outputs[script]
    assert code == 0, stderr
    position = 0
    for fragment in EXPECTED[script]:
        found = stdout.find(fragment, position)
        assert found >= 0, f"{script}: {fragment!r} missing (in order) from:\n{stdout}"
        position = found + len(fragment)
