"""``GET /metrics``: Prometheus's text format, the values known jobs and sessions must give, and who may read it.

Each test runs the app in memory on the virtual clock, sends work over HTTP as clients do, and
reads the exposition back with prometheus-client's own parser, so what is checked is what a
Prometheus server would store. The ``[server]`` keys ``metrics``, ``metrics_token_sha256`` and
``metrics_tenant_label`` are shown taking effect here (``test_server_config.KEY_TESTS``).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import prometheus_client
import pytest
import trio
import trio.testing
from prometheus_client.parser import text_string_to_metric_families

import qmux
from qmux._http import Taken
from qmux.journal import MemoryStore
from qmux.server import QmuxApp, ServerSettings, config_from_mapping, create_app, token_digest
from qmux.server._journal import WatchedJournal
from qmux.server._metrics import HTTP_BUCKETS, Metrics
from qmux.testing import job, qpu

from ..support.remote import OTHER_TOKEN, TENANTS, TOKEN, asgi_client
from .test_openapi import check_against_document

Clock = trio.testing.MockClock
METRICS_TOKEN = "the-metrics-token-1234"
PUBLIC = ServerSettings(metrics="public")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@asynccontextmanager
async def metered(
    backends: Sequence[qmux.Backend] | None = None,
    server: ServerSettings = PUBLIC,
    settings: qmux.ServiceSettings | None = None,
    journal: WatchedJournal | None = None,
) -> AsyncIterator[tuple[qmux.Service, QmuxApp]]:
    async with qmux.open_service(backends or [qpu("q")], settings=settings, journal=journal) as service:
        yield service, create_app(service, TENANTS, server, journal=journal)


async def scrape(http: httpx.AsyncClient) -> Samples:
    """``GET /metrics``, parsed by prometheus-client: {(sample name, labels): value}."""
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def server_table(toml: str) -> ServerSettings:
    """The ``[server]`` table of a config file holding `toml`, read as ``qmux serve`` reads it."""
    document = tomllib.loads(f'[server]\n{toml}\n[[tenants]]\nname = "a"\ntoken = "{TOKEN}"\n')
    return config_from_mapping(document, source="qmux.toml").server


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def open_session(http: httpx.AsyncClient, backend: str = "q", **body: Any) -> str:
    response = await http.post("/sessions", json={"backend": backend, **body})
    assert response.status_code == 201, response.text
    session_id: str = response.json()["id"]
    return session_id


async def submit(http: httpx.AsyncClient, params: Any, **target: Any) -> str:
    response = await http.post("/jobs", json={"program_id": "script", "params": params, **target})
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


# -- who may read it ([server] metrics, metrics_token_sha256) -----------------------------------


async def test_metrics_are_off_unless_configured(autojump_clock: Clock) -> None:
    async with (
        metered(server=ServerSettings()) as (_, app),
        asgi_client(app) as tenant,
        asgi_client(app, token=None) as anonymous,
    ):
        off = await tenant.get("/metrics")
        assert off.status_code == 404
        assert 'metrics = "token" or "public"' in off.json()["error"]["message"]
        assert (await anonymous.get("/metrics")).status_code == 401


@pytest.mark.parametrize(
    ("mode", "who", "status"),
    [
        ("token", "metrics token", 200),
        ("token", "tenant token", 401),
        ("token", "no token", 401),
        ("public", "no token", 200),
        ("public", "tenant token", 200),
        ("off", "metrics token", 401),
        ("off", "tenant token", 404),
    ],
)
async def test_metrics_mode_decides_who_may_read_them(autojump_clock: Clock, mode: str, who: str, status: int) -> None:
    """``metrics = "token"`` lets only the metrics token in (not a tenant's: it sees every tenant)."""
    digest = f'\nmetrics_token_sha256 = "{token_digest(METRICS_TOKEN)}"' if mode == "token" else ""
    token = {"metrics token": METRICS_TOKEN, "tenant token": TOKEN, "no token": None}[who]
    async with (
        metered(server=server_table(f'metrics = "{mode}"{digest}')) as (_, app),
        asgi_client(app, token=token) as http,
    ):
        response = await http.get("/metrics")
        assert response.status_code == status, response.text
        if status == 200:
            assert "qmux_queued_jobs" in response.text


async def test_the_metrics_answer_is_described_by_the_openapi_document(autojump_clock: Clock) -> None:
    async with metered() as (_, app), asgi_client(app) as http:
        answer = await http.get("/metrics")
        document = (await http.get("/openapi.json")).json()
    check_against_document(document, answer)
    assert document["paths"]["/metrics"]["get"]["responses"]["200"]["content"] == {
        "text/plain": {"schema": {"type": "string"}}
    }


def test_a_metrics_token_and_its_mode_go_together() -> None:
    with pytest.raises(qmux.InvalidInputError, match='metrics = "token" and metrics_token_sha256 go together'):
        ServerSettings(metrics="token")
    with pytest.raises(qmux.InvalidInputError, match="go together"):
        ServerSettings(metrics="public", metrics_token_sha256=token_digest(METRICS_TOKEN))
    with pytest.raises(qmux.InvalidInputError, match='must be "off", "token" or "public"'):
        ServerSettings(metrics="on")


# -- the values of known work ------------------------------------------------------------------


async def test_jobs_total_and_the_histograms_count_known_jobs(autojump_clock: Clock) -> None:
    async with metered([qpu("q"), qpu("sim", simulator=True)]) as (_, app), asgi_client(app) as http:
        session = await open_session(http)
        await submit(http, job(2), session_id=session)  # runs 0-2
        await submit(http, job(1, fail="boom"), session_id=session)  # waits 2 s, runs 2-3, fails
        queued = await submit(http, job(5), session_id=session)  # cancelled while it waits
        await submit(http, job(3), backend="sim")  # job mode, runs 0-3
        assert (await http.post(f"/jobs/{queued}/cancel")).status_code == 204
        await trio.sleep(10)
        samples = await scrape(http)
    assert value(samples, "qmux_jobs_total", backend="q", status="done") == 1
    assert value(samples, "qmux_jobs_total", backend="q", status="error") == 1
    assert value(samples, "qmux_jobs_total", backend="q", status="cancelled") == 1
    assert value(samples, "qmux_jobs_total", backend="sim", status="done") == 1
    # only the jobs that ran have a run time and a time in the queue
    assert value(samples, "qmux_job_duration_seconds_count", backend="q") == 2
    assert value(samples, "qmux_job_duration_seconds_sum", backend="q") == pytest.approx(3.0)
    assert value(samples, "qmux_job_duration_seconds_sum", backend="sim") == pytest.approx(3.0)
    assert value(samples, "qmux_job_queue_seconds_count", backend="q") == 2
    assert value(samples, "qmux_job_queue_seconds_sum", backend="q") == pytest.approx(2.0)
    assert value(samples, "qmux_job_duration_seconds_bucket", backend="q", le="1.0") == 1
    assert value(samples, "qmux_job_duration_seconds_bucket", backend="q", le="5.0") == 2


async def test_a_job_is_counted_once_however_often_it_is_scraped(autojump_clock: Clock) -> None:
    async with metered() as (_, app), asgi_client(app) as http:
        await submit(http, job(4), backend="q")
        await trio.sleep(1)
        running = await scrape(http)
        assert value(running, "qmux_job_queue_seconds_count", backend="q") == 1  # seen started: queue time known
        assert value(running, "qmux_jobs_total", backend="q", status="done") == 0
        await trio.sleep(5)
        first, second = await scrape(http), await scrape(http)
    for samples in (first, second):
        assert value(samples, "qmux_jobs_total", backend="q", status="done") == 1
        assert value(samples, "qmux_job_queue_seconds_count", backend="q") == 1
        assert value(samples, "qmux_job_duration_seconds_count", backend="q") == 1


async def test_queued_jobs_and_sessions_by_state_are_read_at_scrape_time(autojump_clock: Clock) -> None:
    async with metered() as (_, app), asgi_client(app) as http:
        holder = await open_session(http)
        waiting = await open_session(http)
        await open_session(http)  # never given a job: stays open
        await submit(http, job(100), session_id=holder)
        await trio.sleep(0.1)
        for _ in range(3):
            await submit(http, job(1), session_id=holder)
        await submit(http, job(1), session_id=waiting)  # waits for the holder's backend
        await submit(http, job(1), backend="q")  # job mode, in line
        await trio.sleep(1)
        samples = await scrape(http)
        assert value(samples, "qmux_queued_jobs", backend="q") == 5
        assert value(samples, "qmux_sessions", backend="q", state="active") == 1
        assert value(samples, "qmux_sessions", backend="q", state="open") == 2
        assert value(samples, "qmux_sessions", backend="q", state="inactive") == 0  # present, at zero
        assert (await http.delete(f"/sessions/{holder}/close")).status_code == 204
        await trio.sleep(200)
        after = await scrape(http)
    assert value(after, "qmux_queued_jobs", backend="q") == 0
    assert value(after, "qmux_sessions", backend="q", state="active") == 0
    assert value(after, "qmux_sessions_closed_total", backend="q", reason="cancelled") == 1


async def test_deactivations_are_counted_per_backend(autojump_clock: Clock) -> None:
    """A session idle past its ITTL is deactivated (SPEC S9); each deactivation counts once."""
    async with metered([qpu("q", interactive_ttl=2)]) as (_, app), asgi_client(app) as http:
        session = await open_session(http)
        for _ in range(2):
            await submit(http, job(1), session_id=session)
            await trio.sleep(5)  # 1 s running, then idle past the 2 s ITTL
            samples = await scrape(http)
            assert value(samples, "qmux_sessions", backend="q", state="inactive") == 1
        assert value(samples, "qmux_session_deactivations_total", backend="q") == 2
        await http.patch(f"/sessions/{session}", json={"accepting_jobs": False})
        samples = await scrape(http)
    assert value(samples, "qmux_session_deactivations_total", backend="q") == 2
    assert value(samples, "qmux_sessions_closed_total", backend="q", reason="closed") == 1
    assert value(samples, "qmux_sessions", backend="q", state="inactive") == 0


async def test_http_requests_are_counted_by_operation_never_by_path(autojump_clock: Clock) -> None:
    async with metered() as (_, app), asgi_client(app) as http:
        jobs = [await submit(http, job(1), backend="q") for _ in range(3)]
        for job_id in jobs:
            assert (await http.get(f"/jobs/{job_id}")).status_code == 200
        assert (await http.get("/jobs/0123456789abcdef0123")).status_code == 404
        assert (await http.get("/no/such/route")).status_code == 404
        response = await http.get("/metrics")
        samples = await scrape(http)
    assert value(samples, "qmux_http_requests_total", route="submit_job", status="201") == 3
    assert value(samples, "qmux_http_requests_total", route="get_job", status="200") == 3
    assert value(samples, "qmux_http_requests_total", route="get_job", status="404") == 1
    assert value(samples, "qmux_http_requests_total", route="no_route", status="404") == 1
    assert value(samples, "qmux_http_requests_total", route="get_metrics", status="200") == 1  # the earlier scrape
    assert value(samples, "qmux_http_request_duration_seconds_count", route="get_job") == 4
    buckets = sorted(
        (float(dict(labels)["le"]), count)
        for (name, labels), count in samples.items()
        if name == "qmux_http_request_duration_seconds_bucket" and ("route", "get_job") in labels
    )
    assert len(buckets) == len(HTTP_BUCKETS) + 1 and buckets[-1] == (math.inf, 4)
    assert [count for _, count in buckets] == sorted(count for _, count in buckets)  # cumulative
    assert buckets[0][1] >= 1  # answered in memory within the first bound
    ids = re.compile(r"[0-9a-f]{20}")
    labels = re.findall(r'="([^"]*)"', response.text)
    assert labels and not [label for label in labels if ids.search(label)]  # no id ever becomes a series


@pytest.mark.parametrize("tenant_label", [False, True])
async def test_tenant_label_splits_series_by_tenant_only_when_configured(
    autojump_clock: Clock, tenant_label: bool
) -> None:
    server = server_table(f'metrics = "public"\nmetrics_tenant_label = {str(tenant_label).lower()}')
    async with (
        metered(server=server) as (_, app),
        asgi_client(app) as alice,
        asgi_client(app, token=OTHER_TOKEN) as bob,
    ):
        for http in (alice, bob, bob):
            await submit(http, job(1), backend="q")
        await open_session(bob)
        await trio.sleep(5)
        samples = await scrape(alice)
        text = (await alice.get("/metrics")).text
    if tenant_label:
        assert value(samples, "qmux_jobs_total", backend="q", status="done", tenant="a") == 1
        assert value(samples, "qmux_jobs_total", backend="q", status="done", tenant="b") == 2
        assert value(samples, "qmux_http_requests_total", route="submit_job", status="201", tenant="b") == 2
        assert value(samples, "qmux_sessions", backend="q", state="open", tenant="b") == 1
    else:
        assert value(samples, "qmux_jobs_total", backend="q", status="done") == 3
        assert value(samples, "qmux_sessions", backend="q", state="open") == 1
        assert "tenant=" not in text


async def test_work_through_ibms_api_is_counted_alike(autojump_clock: Clock) -> None:
    from qmux.ibm import mount_ibm

    async with qmux.open_service([qpu("q")]) as service:
        app = mount_ibm(create_app(service, TENANTS, PUBLIC), service, TENANTS)
        async with asgi_client(app) as http:
            session = await http.post("/experimental/sessions", json={"backend": "q", "mode": "dedicated"})
            body = {"program_id": "script", "session_id": session.json()["id"], "params": job(2)}
            assert (await http.post("/experimental/jobs", json=body)).status_code == 200
            await trio.sleep(5)
            samples = await scrape(http)
            await http.delete(f"/experimental/sessions/{session.json()['id']}/close")
    assert value(samples, "qmux_jobs_total", backend="q", status="done") == 1
    assert value(samples, "qmux_job_duration_seconds_sum", backend="q") == pytest.approx(2.0)
    assert value(samples, "qmux_sessions", backend="q", state="active") == 1
    assert value(samples, "qmux_http_requests_total", route="ibm_submit_job", status="200") == 1


# -- bounds and sources ------------------------------------------------------------------------


async def test_each_app_counts_its_own_work_in_a_registry_of_its_own(autojump_clock: Clock) -> None:
    async with (
        metered() as (_, first),
        metered() as (_, second),
        asgi_client(first) as one,
        asgi_client(second) as other,
    ):
        await submit(one, job(1), backend="q")
        await trio.sleep(2)
        assert value(await scrape(one), "qmux_jobs_total", backend="q", status="done") == 1
        assert value(await scrape(other), "qmux_jobs_total", backend="q", status="done") == 0
    assert prometheus_client.REGISTRY.get_sample_value("qmux_jobs_total", {"backend": "q", "status": "done"}) is None


async def test_a_job_the_service_forgot_before_a_scrape_is_still_counted(autojump_clock: Clock) -> None:
    """Retention drops finished jobs past ``retain_finished``; the count saw each end as it happened."""
    settings = qmux.ServiceSettings(retain_finished=2)
    async with metered(settings=settings) as (_, app), asgi_client(app) as http:
        for _ in range(5):  # each one, once added, drops the oldest finished past the two kept
            await submit(http, job(1), backend="q")
            await trio.sleep(2)
        samples = await scrape(http)
    assert value(samples, "qmux_jobs_total", backend="q", status="done") == 5
    assert value(samples, "qmux_job_duration_seconds_count", backend="q") == 5


async def test_jobs_run_in_process_beside_the_server_are_counted_too(autojump_clock: Clock) -> None:
    """The metrics are the service's: a job submitted without HTTP is counted like one that came over it."""
    async with metered() as (service, app), asgi_client(app) as http:
        async with qmux.Session(service=service, backend="q") as session:
            assert await (await session.run("script", job(3))).result() is not None
            cancelled = await session.run("script", job(1))
            await cancelled.cancel()
        samples = await scrape(http)
    assert value(samples, "qmux_jobs_total", backend="q", status="done") == 1
    assert value(samples, "qmux_jobs_total", backend="q", status="cancelled") == 1
    assert value(samples, "qmux_job_duration_seconds_sum", backend="q") == pytest.approx(3.0)


async def test_the_sessions_followed_are_bounded(autojump_clock: Clock) -> None:
    async with qmux.open_service([qpu("q")]) as service:
        metrics = Metrics.of(service, limit=2)
        for session_id in ("a" * 20, "b" * 20, "c" * 20):
            metrics.took(Taken("session", session_id, "q", "t"))
        assert metrics.followed == 2


async def test_work_recovered_from_the_journal_is_followed_after_a_restart(autojump_clock: Clock) -> None:
    store = MemoryStore()
    async with metered(journal=WatchedJournal(store)) as (_, app), asgi_client(app) as http:
        session = await open_session(http)
        await submit(http, job(10), session_id=session)
        await submit(http, job(10), session_id=session)
        await trio.sleep(1)
        left = MemoryStore()  # what a crash at this instant leaves behind
        left.sessions, left.jobs = dict(store.sessions), dict(store.jobs)
        await http.delete(f"/sessions/{session}/close")
    async with metered(journal=WatchedJournal(left)) as (_, app), asgi_client(app) as http:
        samples = await scrape(http)
        assert value(samples, "qmux_sessions", backend="q", state="active") == 1
        await trio.sleep(30)
        samples = await scrape(http)
        await http.patch(f"/sessions/{session}", json={"accepting_jobs": False})
    # the job running at the crash failed as interrupted; the queued one ran after the restart
    assert value(samples, "qmux_jobs_total", backend="q", status="error") == 1
    assert value(samples, "qmux_jobs_total", backend="q", status="done") == 1
