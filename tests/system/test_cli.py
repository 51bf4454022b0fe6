"""The operators' tools against a real ``qmux serve`` process: the CLI as processes, health and metrics over a socket.

One server per test module (a process on port 0, with a SQLite journal and public metrics),
real clock, every wait bounded. Each ``qmux`` command runs as its own process, as an operator or
a script runs it; what is checked is its stdout, stderr and exit status.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

import qmux

from ..support.serving import ServeProcess as Server
from ..support.serving import serve_process

TOKEN = "operators-token-1234"
UNKNOWN = "0123456789abcdef0123"


@attrs.frozen
class Ran:
    status: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("serve")
    config = (
        f'[server]\nport = 0\njournal = "{folder / "journal.db"}"\nmetrics = "public"\n\n'
        "[service]\nshutdown_grace = 1.0\n\n"
        f'[[tenants]]\nname = "lab"\ntoken = "{TOKEN}"\n\n'
        '[[tenants]]\nname = "other"\ntoken = "another-tenants-token"\n\n'
        "[backends.qpu]\nnum_qubits = 5\njob_seconds = 0.2\n\n"
        "[backends.sim]\nnum_qubits = 20\nsimulator = true\nconcurrency = 4\njob_seconds = 0.05\n"
    )
    with serve_process(folder, config) as served:
        yield served


async def qmux_cli(server: Server, *argv: str, token: str | None = TOKEN, url: str | None = None) -> Ran:
    """``qmux <argv> --url <server>``, as a process; the token in the environment."""
    environment = {key: value for key, value in os.environ.items() if key not in ("QMUX_TOKEN", "QMUX_URL")}
    if token is not None:
        environment["QMUX_TOKEN"] = token
    with trio.fail_after(60):
        done = await trio.run_process(
            [sys.executable, "-m", "qmux", *argv, "--url", url or server.url],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=environment | {"COLUMNS": "100"},
        )
    return Ran(done.returncode, done.stdout.decode(), done.stderr.decode())


async def test_backends_as_a_table_and_as_json(server: Server) -> None:
    table, data = await qmux_cli(server, "backends"), await qmux_cli(server, "backends", "--json")
    assert (table.status, data.status) == (0, 0), table.err + data.err
    assert table.out.splitlines()[0].split() == [
        "backend",
        "qubits",
        "kind",
        "operational",
        "pending",
        "max_ttl",
        "ITTL",
    ]
    assert [line.split()[:3] for line in table.out.splitlines()[2:]] == [
        ["qpu", "5", "QPU"],
        ["sim", "20", "simulator"],
    ]
    assert [(b["name"], b["num_qubits"], b["simulator"]) for b in data.json()] == [("qpu", 5, False), ("sim", 20, True)]


async def test_show_close_and_cancel_a_real_servers_sessions_and_jobs(server: Server, tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with qmux.connect(server.url, token=TOKEN) as service:
            session = qmux.Session(service=service, backend="qpu")
            first = await session.run("echo", "one")
            await first.result()
            queued = [await session.run("echo", n) for n in range(3)]

            shown = await qmux_cli(server, "show", session.session_id, "--json")
            assert shown.status == 0, shown.err
            assert (shown.json()["kind"], shown.json()["state"]) == ("session", "active")
            job = await qmux_cli(server, "show", first.job_id, "--job")
            assert job.status == 0 and job.out.startswith(f"job {first.job_id}") and "DONE" in job.out

            token_file = tmp_path / "token"
            token_file.write_text(TOKEN + "\n")
            closed = await qmux_cli(server, "close", session.session_id, "--token-file", str(token_file), token=None)
            assert closed.status == 0, closed.err
            assert closed.out.strip().startswith(f"closed session {session.session_id}: ")
            assert [await each.result() for each in queued] == [0, 1, 2]  # closing lets queued jobs run (S12)

            lone = await service.backend("qpu").run("echo", "late")
            cancelled = await qmux_cli(server, "cancel", lone.job_id, "--json")
            assert cancelled.status == 0, cancelled.err
            assert (cancelled.json()["action"], cancelled.json()["status"]) in (
                ("cancelled", "CANCELLED"),
                ("cancelled", "DONE"),  # it may have run before the command reached the server
            )


async def test_exit_statuses_scripts_can_rely_on(server: Server) -> None:
    unknown = await qmux_cli(server, "show", UNKNOWN)
    assert (unknown.status, unknown.out) == (1, "")
    assert f"qmux show: no session or job with id '{UNKNOWN}'" in unknown.err
    usage = await qmux_cli(server, "show")
    assert usage.status == 2 and "the following arguments are required: id" in usage.err
    no_token = await qmux_cli(server, "backends", token=None)
    assert no_token.status == 2 and "no token: set QMUX_TOKEN, or pass --token-file FILE" in no_token.err
    wrong = await qmux_cli(server, "backends", token="not-the-token-0000")
    assert wrong.status == 4 and "not-the-token-0000" not in wrong.out + wrong.err
    with trio.socket.socket() as unused:  # a port nobody listens on
        await unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    unreachable = await qmux_cli(server, "backends", url=f"http://127.0.0.1:{port}")
    assert unreachable.status == 3 and "did not answer" in unreachable.err
    for ran in (unknown, no_token, unreachable):
        assert TOKEN not in ran.out + ran.err


async def test_health_and_metrics_over_a_real_socket(server: Server) -> None:
    with trio.fail_after(60):
        async with qmux.connect(server.url, token=TOKEN) as service:
            done = await service.backend("sim").run("echo", 1)
            await done.result()
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/livez")).json() == {"status": "ok"}
            ready = await http.get("/readyz", params={"verbose": ""})
            assert ready.status_code == 200, ready.text
            assert {check["name"]: check["ok"] for check in ready.json()["checks"]} == {
                "journal": True,
                "backends": True,
                "accepting": True,
            }
            for _ in range(50):  # the scrape that sees the job end counts it
                text = (await http.get("/metrics")).text
                if 'qmux_jobs_total{backend="sim",status="done"}' in text:
                    break
                await trio.sleep(0.1)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("qmux_jobs_total", (("backend", "sim"), ("status", "done")))] >= 1
    assert ("qmux_queued_jobs", (("backend", "qpu"),)) in samples
    assert samples[("qmux_http_requests_total", (("route", "get_readyz"), ("status", "200")))] >= 1
    assert any(name == "process_resident_memory_bytes" for name, _ in samples)


async def test_sessions_jobs_and_watch_against_a_real_server(server: Server) -> None:
    with trio.fail_after(60):
        async with qmux.connect(server.url, token=TOKEN) as service:
            session = qmux.Session(service=service, backend="sim")
            job = await session.run("echo", "x")
            await job.result()
            sessions = await qmux_cli(server, "sessions", "--json")
            jobs = await qmux_cli(server, "jobs", "--session", session.session_id, "--json")
            assert session.session_id in [view["id"] for view in sessions.json()]
            assert [view["id"] for view in jobs.json()] == [job.job_id]
            async with trio.open_nursery() as nursery:
                watched: list[Ran] = []

                async def watch() -> None:
                    watched.append(await qmux_cli(server, "watch", "--session", session.session_id, "--json"))

                nursery.start_soon(watch)
                await trio.sleep(2)
                await session.close()
            kinds = [json.loads(line)["kind"] for line in watched[0].out.splitlines()]
            assert watched[0].status == 0 and kinds[-1] == "session.closed"
