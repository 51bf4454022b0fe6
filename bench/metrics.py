"""metrics: job round trips per second through the HTTP app with Prometheus metrics on, against off.

Both sides are the same app (`qmux.server.create_app`) over one zero-work backend, reached with
``qmux.connect`` through ``httpx.ASGITransport``: in memory, no sockets, so the figure is the
work per request (where the counting shows most) rather than loopback latency. Clients share one
session: ``job = await session.run("echo", i); await job.result()``, two HTTP requests per round
trip. **on**: ``[server] metrics = "public"``, every request counted, each job counted as it
starts and ends, the session followed, and a scraper reading ``GET /metrics`` every
`SCRAPE_EVERY` seconds meanwhile (more often than Prometheus's usual 15 s). **off**: the
default, ``metrics = "off"``. One sample varies by about 4% from the next on a quiet machine,
and drifts over a run, while the cost measured is 1-3%: hence nine rounds, each running both
sides back to back (in alternating order), and the ratio is the median of the rounds' own
ratios, which a drift over the run does not move; the samples are listed below the table.
"""

from __future__ import annotations

import time

import httpx
import trio

import qmux
from qmux.backends import LocalBackend

from ._common import Result, Row, alternate, configure_logging, median

__all__ = ["run"]

TARGET = 0.95
#: seconds between scrapes while the clients run
SCRAPE_EVERY = 1.0
_TOKEN = "bench-metrics-token"


def _round_trips(clients: int, per_client: int, *, metrics: bool) -> float:
    """Seconds for ``clients * per_client`` round trips through the app, with metrics on or off."""
    from qmux.server import ServerSettings, Tenant, create_app

    async def main() -> float:
        backend = LocalBackend("zero", qmux.BackendConfig(concurrency=clients), job_seconds=0.0)
        # one tenant sends everything here: lift its request rate, or the row measures the limiter
        unlimited = {"rate_per_tenant": 10**9, "burst_per_tenant": 10**9, "max_in_flight_per_tenant": 10**6}
        settings = ServerSettings(metrics="public" if metrics else "off", **unlimited)
        async with qmux.open_service([backend], settings=qmux.ServiceSettings(shutdown_grace=1.0)) as local:
            app = create_app(local, [Tenant.from_token("bench", _TOKEN)], settings)
            transport = httpx.ASGITransport(app=app)
            async with qmux.connect("http://bench", token=_TOKEN, transport=transport) as service:
                session = qmux.Session(service=service, backend="zero")
                await session.status()  # created on the server before the clock starts

                async def client() -> None:
                    for i in range(per_client):
                        job = await session.run("echo", i)
                        if await job.result() != i:
                            raise AssertionError("echo returned something else")

                async def scraper(http: httpx.AsyncClient) -> None:
                    while True:
                        await trio.sleep(SCRAPE_EVERY)
                        if (await http.get("/metrics")).status_code != 200:
                            raise AssertionError("the scrape failed")

                async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                    start = time.perf_counter()
                    async with trio.open_nursery() as outer:
                        if metrics:
                            outer.start_soon(scraper, http)
                        async with trio.open_nursery() as nursery:
                            for _ in range(clients):
                                nursery.start_soon(client)
                        elapsed = time.perf_counter() - start
                        outer.cancel_scope.cancel()
                    if metrics and "qmux_jobs_total" not in (await http.get("/metrics")).text:
                        raise AssertionError("the jobs were not counted")
                await session.close()
        return elapsed

    return trio.run(main)


def run(quick: bool = False) -> Result:
    configure_logging()
    result = Result(name="metrics", method=(__doc__ or "").split("\n\n", 1)[1].strip())
    clients, per_client, rounds = (10, 100, 1) if quick else (20, 250, 9)
    total = clients * per_client
    samples = alternate(
        rounds,
        {
            "on": lambda: _round_trips(clients, per_client, metrics=True),
            "off": lambda: _round_trips(clients, per_client, metrics=False),
        },
    )
    on, off = total / median(samples["on"]), total / median(samples["off"])
    # each round ran both sides back to back: its own ratio (rate on / rate off = time off / time on)
    ratio = median([without / with_ for with_, without in zip(samples["on"], samples["off"], strict=True)])
    result.rows.append(
        Row(
            measure=f"job round trips/s through the HTTP app in memory, {clients} clients: metrics on vs off",
            qmux=on,
            unit="/s",
            baseline=off,
            ratio=ratio,
            target=f"≥ {TARGET}x metrics off",
            met=ratio >= TARGET,
            note=f"on: every request and job counted, GET /metrics every {SCRAPE_EVERY:g} s",
        )
    )
    result.extra = {"samples_seconds": samples}
    result.method += (
        f"\n\n{clients} client tasks x {per_client} round trips ({total} per sample, {2 * total} HTTP requests), "
        f"{rounds} alternating round(s) after a warm-up; rates: medians; ratio: the median of the rounds' "
        f"own ratios (rate with metrics / rate without; the ratio of the median rates is {on / off:.2f}x). "
        f"Seconds per sample, on: {', '.join(f'{x:.3f}' for x in samples['on'])}; "
        f"off: {', '.join(f'{x:.3f}' for x in samples['off'])}."
    )
    return result
