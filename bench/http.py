"""http: job round trips per second over loopback HTTP, against a bare hypercorn app.

**qmux**: ``qmux serve``'s server (`qmux.server.serve`, hypercorn's Trio worker) on 127.0.0.1,
port 0, over one zero-work backend; clients use ``qmux.connect(url, token=...)`` and the
in-process API unchanged: ``job = await session.run("echo", i); await job.result()``, all
clients sharing one session. One round trip is two HTTP requests: ``POST /jobs`` and
``GET /jobs/{id}/results`` (a long poll that answers as soon as the job has ended).

**Baseline**: a bare ASGI app on the same hypercorn worker and configuration, answering every
request with a constant JSON body; clients use the same client library (an ``httpx.AsyncClient``
with the same connection limits and bearer header) and make the same two requests per round trip,
with bodies of the same shape. Server and clients share one process and one Trio loop on both
sides, so the ratio compares the work done per request, not how the two cores are shared.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import trio

import qmux
from qmux.backends import LocalBackend

from ._common import Result, Row, alternate, configure_logging, median

if TYPE_CHECKING:
    from hypercorn.typing import ASGIFramework

__all__ = ["run"]

TARGET = 0.5
_CONSTANT_JOB = b'{"id":"0123456789abcdef0123","backend":"zero","session_id":null}'
_CONSTANT_RESULT = b'{"value":1}'


def _available() -> str | None:
    """Why the benchmark cannot run here, or ``None``."""
    try:
        import hypercorn.trio  # noqa: F401

        import qmux.server
    except ImportError as exc:
        return f"not available yet: {exc}"
    if not hasattr(qmux, "connect"):
        return "not available yet: qmux.connect is missing"
    return None


def _hypercorn_config() -> Any:
    import hypercorn.config

    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.include_server_header = False
    config.graceful_timeout = 1.0
    config.errorlog = logging.getLogger("hypercorn.error")  # as qmux serve does: no "Running on" banner
    return config


async def _constant_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """A bare ASGI app: every request gets the same small JSON answer."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = _CONSTANT_JOB if scope["method"] == "POST" else _CONSTANT_RESULT
    await send(
        {
            "type": "http.response.start",
            "status": 201 if scope["method"] == "POST" else 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _qmux_http(clients: int, per_client: int) -> float:
    from qmux.server import ServerConfig, ServerSettings, Tenant, serve

    token = secrets.token_urlsafe(24)
    config = ServerConfig(
        tenants=(Tenant.from_token("bench", token),),
        server=ServerSettings(host="127.0.0.1", port=0),
        service=qmux.ServiceSettings(shutdown_grace=1.0),
        backends=(LocalBackend("zero", qmux.BackendConfig(concurrency=clients), job_seconds=0.0),),
    )

    async def main() -> float:
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            url = await nursery.start(functools.partial(serve, config, shutdown_trigger=stop.wait))
            async with qmux.connect(url, token=token, max_connections=clients) as service:
                session = qmux.Session(service=service, backend="zero")
                await session.status()  # the session exists on the server before the clock starts

                async def client() -> None:
                    for i in range(per_client):
                        job = await session.run("echo", i)
                        if await job.result() != i:
                            raise AssertionError("echo returned something else")

                start = time.perf_counter()
                async with trio.open_nursery() as clients_nursery:
                    for _ in range(clients):
                        clients_nursery.start_soon(client)
                elapsed = time.perf_counter() - start
                await session.close()
            stop.set()
        return elapsed

    return trio.run(main)


def _baseline_http(clients: int, per_client: int) -> float:
    import httpx
    import hypercorn.trio

    token = secrets.token_urlsafe(24)

    async def main() -> float:
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                functools.partial(
                    hypercorn.trio.serve,
                    cast("ASGIFramework", _constant_app),
                    _hypercorn_config(),
                    shutdown_trigger=stop.wait,
                )
            )
            limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
            async with httpx.AsyncClient(
                base_url=binds[0],
                transport=httpx.AsyncHTTPTransport(limits=limits),
                headers={"authorization": f"Bearer {token}", "user-agent": "qmux-bench"},
                timeout=httpx.Timeout(30.0),
            ) as http:
                session_id = secrets.token_hex(10)

                async def client() -> None:
                    for i in range(per_client):
                        body = {"program_id": "echo", "backend": "zero", "session_id": session_id, "params": i}
                        response = await http.post("/jobs", json=body)
                        job_id = response.json()["id"]
                        response = await http.get(f"/jobs/{job_id}/results", params={"wait": 30.0})
                        if response.status_code != 200 or response.json()["value"] != 1:
                            raise AssertionError("the constant app answered something else")

                start = time.perf_counter()
                async with trio.open_nursery() as clients_nursery:
                    for _ in range(clients):
                        clients_nursery.start_soon(client)
                elapsed = time.perf_counter() - start
            stop.set()
        return elapsed

    return trio.run(main)


def run(quick: bool = False) -> Result:
    configure_logging()
    result = Result(name="http", method=(__doc__ or "").split("\n\n", 1)[1].strip())
    missing = _available()
    if missing:
        result.skipped = missing
        return result
    clients, per_client, rounds = (5, 10, 1) if quick else (20, 25, 5)
    total = clients * per_client
    samples = alternate(
        rounds,
        {"qmux": lambda: _qmux_http(clients, per_client), "baseline": lambda: _baseline_http(clients, per_client)},
    )
    mine, floor = total / median(samples["qmux"]), total / median(samples["baseline"])
    result.rows.append(
        Row(
            measure=f"job round trips/s over loopback HTTP, {clients} clients",
            qmux=mine,
            unit="/s",
            baseline=floor,
            ratio=mine / floor,
            target=f"≥ {TARGET}x baseline",
            met=mine / floor >= TARGET,
        )
    )
    result.extra = {"samples_seconds": samples}
    result.method += (
        f"\n\n{clients} client tasks x {per_client} round trips ({total} per sample, {2 * total} HTTP requests), "
        f"{rounds} alternating round(s) after a warm-up; medians."
    )
    return result
