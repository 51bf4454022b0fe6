"""A real process killed with SIGKILL mid-run and restarted on the same journal: nothing vanishes.

Every job the killed process acknowledged must, after the restart, be found by id and end either
done with its result or failed with a reason (issue: fault matrix, "server process killed"), with
the journal in a SQLite file and in a PostgreSQL database (a real server the tests start).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ..support.journal_worker import BACKENDS, outcomes_after_restart

ROOT = Path(__file__).resolve().parents[2]


def _run_until_killed(journal: str, acks_wanted: int) -> dict[str, int]:
    acked: dict[str, int] = {}
    with subprocess.Popen(
        [sys.executable, "-m", "tests.support.journal_worker", journal],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as worker:
        assert worker.stdout is not None
        try:
            for line in worker.stdout:
                words = line.split()
                if words[0] == "ACK":
                    acked[words[1]] = int(words[2])
                    if len(acked) >= acks_wanted:
                        break
        finally:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL
    return acked


@pytest.fixture(params=["sqlite", "postgres"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The journal the worker is given: a SQLite file, or a fresh PostgreSQL database's URL."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return str(tmp_path / "qmux.db")


@pytest.mark.parametrize("acks_wanted", [7, 150])
def test_every_acknowledged_job_survives_a_sigkill(journal: str, acks_wanted: int) -> None:
    acked = _run_until_killed(journal, acks_wanted)
    outcomes = outcomes_after_restart(journal, BACKENDS, acked)
    assert set(outcomes) == set(acked)
    assert "done" in outcomes.values()
