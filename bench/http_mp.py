"""http_mp: jobs over loopback HTTP from several client processes, against a bare hypercorn app.

**qmux**: a real ``qmux serve`` process (``python -m qmux serve --config ...``, its default
logging: JSON lines on stderr at INFO, sent to /dev/null) on 127.0.0.1, port 0, with one zero-work
backend per client process (``job_seconds = 0``, concurrency = the process's tasks). Each client
process is what an agent of a fleet runs: ``qmux.connect(url, token=...)``, one session on its
own backend, and T tasks each doing sequential round trips,
``job = await session.run("echo", i); await job.result()`` (two HTTP requests: ``POST /jobs``
and ``GET /jobs/{id}/results?wait=...``, a long poll answered as soon as the job has ended).

**Baseline**: a bare ASGI app (``bench.http``'s constant app: every request gets a constant JSON
answer of the same shape) served by hypercorn's Trio worker with the same settings, in a process
of its own; the same number of client processes, each with T tasks making the same two requests
per round trip with bodies of the same shape, through an ``httpx.AsyncClient`` with the same
connection limits and bearer header.

Every client process starts, connects and opens its session, says it is ready, and waits; all
are released at once, and each records the submit-to-result latency of every round trip and the
wall-clock times of its first submit and last result. Jobs/s = all round trips / (the last
result - the first submit, across the processes); p50/p99 over every round trip of every round.
Both servers run for the whole benchmark; the fleets alternate between them round by round
after a warm-up round each. Loopback only, bounded in count (and every process in time).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import trio

from ._common import Result, Row, configure_logging, median, percentile

__all__ = ["run"]

TARGET = 0.5
#: any process of the benchmark that takes longer than this is stopped and the benchmark fails
PROCESS_TIMEOUT = 120.0

_USAGE = "--client {qmux,baseline} URL TOKEN BACKEND TASKS PER_TASK | --baseline-server"
_SERVER_CONFIG = """
[server]
host = "127.0.0.1"
port = 0
max_in_flight = 100000

[service]
shutdown_grace = 1

[[tenants]]
name = "bench"
token = "{token}"
"""
_BACKEND = """
[backends.zero{index}]
job_seconds = 0
concurrency = {tasks}
"""


# -- the processes -----------------------------------------------------------------------------


@contextmanager
def _server(command: list[str], banner: str) -> Iterator[str]:
    """Start a server process, yield the URL it prints after `banner`, and stop it on the way out."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        url = _read_banner(process.stdout, banner)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _read_banner(stream: IO[str], banner: str) -> str:
    deadline = time.monotonic() + PROCESS_TIMEOUT
    for line in stream:
        if line.startswith(banner):
            return line.removeprefix(banner).strip()
        if time.monotonic() > deadline:
            break
    raise RuntimeError(f"the server did not print {banner!r}")


def _fleet(kind: str, url: str, token: str, processes: int, tasks: int, per_task: int) -> list[dict[str, Any]]:
    """Run one fleet of client processes against `url`, released together; their reports."""
    clients = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.http_mp",
                "--client",
                kind,
                url,
                token,
                f"zero{index}",
                str(tasks),
                str(per_task),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for index in range(processes)
    ]
    try:
        for client in clients:
            assert client.stdout is not None
            if client.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a {kind} client process did not get ready")
        for client in clients:  # release them all at once
            assert client.stdin is not None
            client.stdin.write("go\n")
            client.stdin.flush()
        reports = []
        for client in clients:
            out, _ = client.communicate(timeout=PROCESS_TIMEOUT)
            if client.returncode != 0:
                raise RuntimeError(f"a {kind} client process exited with status {client.returncode}")
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return reports
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
                client.wait()


# -- inside a client process -------------------------------------------------------------------


async def _qmux_client(url: str, token: str, backend: str, tasks: int, per_task: int) -> dict[str, Any]:
    import qmux

    latencies: list[float] = []
    async with qmux.connect(url, token=token, max_connections=tasks) as service:
        session = qmux.Session(service=service, backend=backend)
        await session.status()  # the session exists on the server before the clock starts
        started = await _ready_then_go()

        async def task() -> None:
            for i in range(per_task):
                submitted = time.perf_counter()
                job = await session.run("echo", i)
                if await job.result() != i:
                    raise AssertionError("echo returned something else")
                latencies.append(time.perf_counter() - submitted)

        async with trio.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(task)
        ended = time.time()
        await session.close()
    return {"latencies": latencies, "started": started, "ended": ended}


async def _baseline_client(url: str, token: str, backend: str, tasks: int, per_task: int) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    limits = httpx.Limits(max_connections=tasks, max_keepalive_connections=tasks)
    async with httpx.AsyncClient(
        base_url=url,
        transport=httpx.AsyncHTTPTransport(limits=limits),
        headers={"authorization": f"Bearer {token}", "user-agent": "qmux-bench"},
        timeout=httpx.Timeout(30.0),
    ) as http:
        opened = await http.post("/sessions", json={"backend": backend, "mode": "dedicated"})
        session_id = opened.json()["id"]
        started = await _ready_then_go()

        async def task() -> None:
            for i in range(per_task):
                submitted = time.perf_counter()
                body = {"program_id": "echo", "backend": backend, "session_id": session_id, "params": i}
                response = await http.post("/jobs", json=body)
                job_id = response.json()["id"]
                response = await http.get(f"/jobs/{job_id}/results", params={"wait": 30.0})
                if response.status_code != 200 or response.json()["value"] != 1:
                    raise AssertionError("the constant app answered something else")
                latencies.append(time.perf_counter() - submitted)

        async with trio.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(task)
        ended = time.time()
    return {"latencies": latencies, "started": started, "ended": ended}


async def _ready_then_go() -> float:
    """Tell the parent this process is ready, wait for its go, and return the wall-clock time then."""
    print("ready", flush=True)
    line = await trio.to_thread.run_sync(sys.stdin.readline)
    if line.strip() != "go":
        raise RuntimeError("the parent did not say go")
    return time.time()


def _client_main(kind: str, url: str, token: str, backend: str, tasks: int, per_task: int) -> None:
    configure_logging()
    client = _qmux_client if kind == "qmux" else _baseline_client

    async def bounded() -> dict[str, Any]:
        with trio.fail_after(PROCESS_TIMEOUT):
            return await client(url, token, backend, tasks, per_task)

    print(json.dumps(trio.run(bounded)), flush=True)


def _baseline_server_main() -> None:
    """A bare hypercorn app (the constant answers of ``bench.http``) on 127.0.0.1, any port."""
    import functools
    from typing import cast

    import hypercorn.trio

    from .http import _constant_app, _hypercorn_config

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                functools.partial(hypercorn.trio.serve, cast("Any", _constant_app), _hypercorn_config())
            )
            print(f"serving on {binds[0]}", flush=True)

    trio.run(main)


# -- the benchmark -----------------------------------------------------------------------------


def _available() -> str | None:
    try:
        import httpx  # noqa: F401
        import hypercorn.trio  # noqa: F401

        import qmux.server  # noqa: F401
    except ImportError as exc:
        return f"not available: {exc}"
    return None


def _summary(reports: list[dict[str, Any]]) -> tuple[float, list[float]]:
    """(round trips per second across the fleet, every latency in seconds)."""
    latencies = [latency for report in reports for latency in report["latencies"]]
    span = max(report["ended"] for report in reports) - min(report["started"] for report in reports)
    return len(latencies) / span, latencies


def run(quick: bool = False) -> Result:
    configure_logging()
    result = Result(name="http_mp", method=(__doc__ or "").split("\n\n", 1)[1].strip())
    missing = _available()
    if missing:
        result.skipped = missing
        return result
    processes, tasks, per_task, rounds = (2, 4, 10, 1) if quick else (4, 8, 40, 3)
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="qmux-bench-") as folder:
        config = Path(folder) / "qmux.toml"
        backends = "".join(_BACKEND.format(index=index, tasks=tasks) for index in range(processes))
        config.write_text(_SERVER_CONFIG.format(token=token) + backends, encoding="utf-8")
        qmux_server = [sys.executable, "-m", "qmux", "serve", "--config", str(config), "--log-format", "json"]
        baseline_server = [sys.executable, "-m", "bench.http_mp", "--baseline-server"]
        with (
            _server(qmux_server, "qmux serving on ") as qmux_url,
            _server(baseline_server, "serving on ") as baseline_url,
        ):
            urls = {"qmux": qmux_url, "baseline": baseline_url}
            for kind, url in urls.items():  # warm-up: connections, imports, caches
                _fleet(kind, url, token, processes, tasks, max(1, per_task // 4))
            rates: dict[str, list[float]] = {"qmux": [], "baseline": []}
            latencies: dict[str, list[float]] = {"qmux": [], "baseline": []}
            for index in range(rounds):
                for kind in ("qmux", "baseline") if index % 2 == 0 else ("baseline", "qmux"):
                    rate, seen = _summary(_fleet(kind, urls[kind], token, processes, tasks, per_task))
                    rates[kind].append(rate)
                    latencies[kind].extend(seen)
    mine, floor = median(rates["qmux"]), median(rates["baseline"])
    where = f"{processes} client processes x {tasks} tasks"
    result.rows.append(
        Row(
            measure=f"job round trips/s over loopback HTTP, {where}",
            qmux=mine,
            unit="/s",
            baseline=floor,
            ratio=mine / floor,
            target=f"≥ {TARGET}x baseline",
            met=mine / floor >= TARGET,
        )
    )
    for q in (50, 99):
        ours, theirs = percentile(latencies["qmux"], q) * 1000, percentile(latencies["baseline"], q) * 1000
        result.rows.append(
            Row(
                measure=f"submit-to-result latency p{q}, {where}",
                qmux=ours,
                unit="ms",
                baseline=theirs,
                ratio=ours / theirs if theirs and not math.isnan(theirs) else None,
                note="time ratio: lower is better",
            )
        )
    total = processes * tasks * per_task
    result.extra = {"rates": rates, "cores": os.cpu_count()}
    result.method += (
        f"\n\nSizes: {processes} client processes x {tasks} tasks x {per_task} round trips ({total:,} per round, "
        f"{2 * total:,} HTTP requests), {rounds} alternating round(s) after a warm-up; jobs/s: medians of the rounds. "
        "The client processes and the server share the machine's cores."
    )
    return result


if __name__ == "__main__":
    # one client process of a fleet, or the baseline's server
    if len(sys.argv) == 8 and sys.argv[1] == "--client":
        _client_main(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), int(sys.argv[7]))
    elif sys.argv[1:] == ["--baseline-server"]:
        _baseline_server_main()
    else:
        raise SystemExit(f"usage: python -m bench.http_mp {_USAGE}")
