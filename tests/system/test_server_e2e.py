"""End to end over real sockets: hypercorn on 127.0.0.1, port 0, and `qmux.connect` clients.

Real clock (never autojump across sockets), and an absolute ``trio.fail_after`` on every test
that could hang. Also ``qmux serve`` as a process: started, used, stopped by a signal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

import qmux
from qmux._remote._client import RemoteJobPort
from qmux.backends import LocalBackend

from ..support.remote import OTHER_TOKEN, TOKEN, real_server

CLIENTS = 200


def fast_qpus(count: int, *, job_seconds: float = 0.002) -> list[LocalBackend]:
    config = qmux.BackendConfig(num_qubits=5, interactive_ttl=5.0, max_ttl=600.0)
    return [LocalBackend(f"qpu{i}", config, job_seconds=job_seconds) for i in range(count)]


async def test_a_session_and_a_job_over_a_real_socket() -> None:
    with trio.fail_after(30):
        async with real_server(fast_qpus(2)) as server:
            assert server.url.startswith("http://127.0.0.1:")
            async with qmux.connect(server.url, token=TOKEN) as service:
                async with qmux.Session(service=service, backend="qpu0", max_time="5m") as session:
                    first = await session.run("echo", {"n": 1})
                    assert first.job_id == session.session_id  # the root job's id is the session's (S14)
                    assert await first.result() == {"n": 1}
                    assert await session.status() == "In progress, accepting new jobs"
                    details = await session.details()
                    assert details["max_time"] == 300 and details["state"] == "active"
                assert await session.status() == "Closed"
                lone = await service.least_busy().run("echo", [1, 2])
                assert await lone.result() == [1, 2] and lone.session_id is None
                async with httpx.AsyncClient(base_url=server.url) as raw:
                    assert (await raw.get("/openapi.json")).json()["openapi"] == "3.1.0"
                    assert (await raw.get("/backends")).status_code == 401


async def test_two_tenants_cannot_see_each_other_over_a_real_socket() -> None:
    with trio.fail_after(30):
        async with (
            real_server(fast_qpus(1)) as server,
            qmux.connect(server.url, token=TOKEN) as alice,
            qmux.connect(server.url, token=OTHER_TOKEN) as bob,
            qmux.Session(service=alice, backend="qpu0") as session,
        ):
            submitted = await session.run("echo", "secret")
            with pytest.raises(qmux.SessionNotFoundError):
                await bob.session(session.session_id)
            with pytest.raises(qmux.JobNotFoundError):
                await bob.job(submitted.job_id)
            forged = qmux.Job(  # a handle bob makes up for alice's job: it reaches nothing
                RemoteJobPort(bob, job_id=submitted.job_id, session_id=None, program_id="x", backend_name="qpu0")
            )
            for attempt in (forged.cancel, forged.result, forged.status):
                with pytest.raises(qmux.JobNotFoundError):
                    await attempt()
            assert await submitted.result() == "secret"


async def test_200_concurrent_remote_clients_complete_with_every_job_accounted_for() -> None:
    """Each client: its own connection, a session with two jobs, and one job-mode job."""
    results: dict[str, Any] = {}
    expected: dict[str, Any] = {}

    async def client(index: int, url: str) -> None:
        async with qmux.connect(url, token=TOKEN if index % 2 else OTHER_TOKEN) as service:
            backend = service.backend(f"qpu{index % 4}")
            async with qmux.Session(service=service, backend=backend) as session:
                jobs = [await session.run("echo", {"client": index, "n": n}) for n in range(2)]
                for n, each in enumerate(jobs):
                    expected[each.job_id] = {"client": index, "n": n}
                    results[each.job_id] = await each.result()
            lone = await service.backend(f"qpu{(index + 1) % 4}").run("echo", {"client": index, "n": "lone"})
            expected[lone.job_id] = {"client": index, "n": "lone"}
            results[lone.job_id] = await lone.result()

    with trio.fail_after(90):
        async with real_server(fast_qpus(4)) as server:
            async with trio.open_nursery() as nursery:
                for index in range(CLIENTS):
                    nursery.start_soon(client, index, server.url)
            async with qmux.connect(server.url, token=TOKEN) as check:
                assert all(handle.pending_jobs == 0 for handle in check.backends())
    assert len(expected) == 3 * CLIENTS  # every job id unique
    assert results == expected  # every job ran once, and its result came back to its client


async def test_shutdown_answers_waiting_clients_and_ends_within_the_grace() -> None:
    with trio.fail_after(30):
        async with (
            real_server(fast_qpus(1, job_seconds=60), shutdown_grace=1.0) as server,
            qmux.connect(server.url, token=TOKEN) as service,
        ):
            slow = await service.backend("qpu0").run("echo", 1)
            outcome: list[BaseException] = []

            async def wait() -> None:
                try:
                    await slow.result()
                except qmux.QmuxError as exc:
                    outcome.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                await trio.sleep(0.2)
                start = trio.current_time()
                server.stop.set()
            assert isinstance(outcome[0], qmux.ServiceClosedError)
            assert trio.current_time() - start < 10  # woken, not left hanging for its 60 s job


def _serve_process(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    config = tmp_path / "qmux.toml"
    config.write_text(
        "[server]\nport = 0\n\n[service]\nshutdown_grace = 1.0\n\n"
        '[[tenants]]\nname = "cli"\ntoken = "cli-token-123"\n\n'
        "[backends.tiny]\nnum_qubits = 2\njob_seconds = 0.01\n"
    )
    return subprocess.Popen(
        [sys.executable, "-m", "qmux", "serve", "--config", str(config), "--log-format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_qmux_serve_runs_as_a_process_and_stops_cleanly_on_a_signal(tmp_path: Path, signum: int) -> None:
    process = _serve_process(tmp_path, {})
    try:
        with trio.fail_after(60):
            assert process.stdout is not None
            line = await trio.to_thread.run_sync(process.stdout.readline)
            assert line.startswith("qmux serving on http://127.0.0.1:"), line
            url = line.split()[-1]
            async with qmux.connect(url, token="cli-token-123") as service:
                assert [h.name for h in service.backends()] == ["tiny"]
                async with qmux.Session(service=service, backend="tiny") as session:
                    assert await (await session.run("echo", "hello")).result() == "hello"
            process.send_signal(signum)
            code = await trio.to_thread.run_sync(process.wait)
        assert code == 0
        assert process.stderr is not None
        log = process.stderr.read()
        assert '"event": "server.stopped"' in log and '"event": "http.request"' in log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


async def test_qmux_serve_refuses_a_bad_config_with_a_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[server]\nprot = 1\n[[tenants]]\nname = "x"\ntoken = "long-enough-token"\n')
    done = await trio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-m", "qmux", "serve", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    )
    assert done.returncode == 2
    assert "unknown key 'prot'" in done.stderr and "[server]" in done.stderr
