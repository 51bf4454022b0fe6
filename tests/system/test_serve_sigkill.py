"""`qmux serve` killed with SIGKILL mid-run and restarted on the same journal (fault matrix).

A real server process with a SQLite journal; a remote client submits jobs over HTTP and notes
every job the server acknowledged; the server is killed without warning, started again on the
same journal, and every acknowledged job must be found by its owner, by id, and end either done
with its result or failed with a reason: none vanishes (issue: nothing lost).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import trio

import qmux

TOKEN = "token-of-the-sigkill-test"
CONFIG = """
[server]
host = "127.0.0.1"
port = 0
journal = "{journal}"

[[tenants]]
name = "agent"
token = "{token}"

[backends.q]
job_seconds = 0.05  # 60 jobs: most still queued when the server is killed
interactive_ttl = 0.05
"""


def _start(config: Path) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "qmux", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdout is not None
    for line in server.stdout:
        if line.startswith("qmux serving on "):
            return server, line.removeprefix("qmux serving on ").strip()
    raise AssertionError("qmux serve did not start")


def test_every_acknowledged_job_survives_a_sigkilled_server(tmp_path: Path) -> None:
    config = tmp_path / "qmux.toml"
    config.write_text(CONFIG.format(journal=tmp_path / "qmux.sqlite", token=TOKEN), encoding="utf-8")
    acknowledged: dict[str, int] = {}

    async def work(url: str) -> None:
        with trio.fail_after(60):
            await submit(url)

    async def submit(url: str) -> None:
        async with qmux.connect(url, token=TOKEN, retries=0) as service:
            session = qmux.Session(service=service, backend="q")
            for n in range(60):
                job = await (session.run("echo", n) if n % 3 else service.backend("q").run("echo", n))
                acknowledged[job.job_id] = n
                if n % 10 == 0:
                    await job.result()

    server, url = _start(config)
    with server:
        try:
            trio.run(work, url)
        finally:
            os.kill(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
            assert server.stdout is not None
            server.stdout.close()
    assert server.returncode == -signal.SIGKILL
    assert len(acknowledged) == 60

    outcomes: dict[str, str] = {}

    async def check(url: str) -> None:
        with trio.fail_after(60):
            async with qmux.connect(url, token=TOKEN) as service:
                for job_id, n in acknowledged.items():
                    job = await service.job(job_id)  # a JobNotFoundError here is a vanished job
                    try:
                        assert await job.result() == n
                        outcomes[job_id] = "done"
                    except qmux.JobFailedError as exc:
                        assert exc.reason == "interrupted_by_restart", exc
                        outcomes[job_id] = "interrupted"

    server, url = _start(config)
    with server:
        try:
            trio.run(check, url)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            assert server.stdout is not None
            server.stdout.close()
    assert set(outcomes) == set(acknowledged)
    assert "done" in outcomes.values()
