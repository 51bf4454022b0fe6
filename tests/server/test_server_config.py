"""The server's config file (`qmux.server.load_config`): every key takes effect; tenants and tokens.

Each key of ``[server]``, ``[service]`` and ``[[tenants]]`` has a test that ``qmux serve``
behaves as it says, on the virtual clock: the file is loaded, then wired as `serve` wires it
(`served`: the service from ``[service]``, ``[backends.*]`` and ``journal``, the app from
``[server]`` and the tenants) and used over HTTP in memory. ``host`` and ``port`` need a real
socket, and the journal is best seen across a real restart: those are in
``tests/system/test_serve_config.py``. `KEY_TESTS` maps every key to its test, and a test
checks that it covers every field of the classes the tables are read into.
"""

from __future__ import annotations

import gc
import hashlib
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import numpy as np
import pytest
import trio
import trio.testing

import qmux
import qmux.server._config
from qmux import _wire
from qmux._core import SessionActor
from qmux.cluster import ClusterSettings
from qmux.server import (
    QmuxApp,
    ServerConfig,
    ServerSettings,
    Tenant,
    config_from_mapping,
    create_app,
    load_config,
    token_digest,
)
from qmux.server._auth import TokenAuth
from qmux.server._journal import watched_journal

from ..system import test_cluster_serve as on_several_nodes
from ..system import test_serve_config as on_a_real_socket
from . import test_metrics
from .streaming import streaming_client

Clock = trio.testing.MockClock
BASE_URL = "http://qmux.test"
README = Path(__file__).resolve().parents[2] / "README.md"
ALICE, BOB = "alices-token", "bobs-plain-token"

FULL = """
[server]
host = "0.0.0.0"
port = 9000
journal = "qmux.sqlite"
long_poll = 10

[service]
shutdown_grace = 2.5
idle_open_timeout = "1m"

[[tenants]]
name = "alice"
token_sha256 = "{digest}"

[[tenants]]
name = "bob"
token = "bobs-plain-token"

[backends.tiny]
num_qubits = 3
job_seconds = 0.1

[someone_elses]
anything = true
"""


def test_a_full_config_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "qmux.toml"
    path.write_text(FULL.replace("{digest}", hashlib.sha256(ALICE.encode()).hexdigest()))
    config = load_config(path)
    assert config.server == ServerSettings(host="0.0.0.0", port=9000, journal="qmux.sqlite", long_poll=10)
    assert config.service == qmux.ServiceSettings(shutdown_grace=2.5, idle_open_timeout=60)
    assert [t.name for t in config.tenants] == ["alice", "bob"]
    assert config.backends is not None and [b.name for b in config.backends] == ["tiny"]
    assert config.backends[0].config.num_qubits == 3


def test_without_backends_the_embedded_set_is_served() -> None:
    config = config_from_mapping({"tenants": [{"name": "a", "token": "a-long-token"}]})
    assert config.backends is None and config.server == ServerSettings() and config.service == qmux.ServiceSettings()


# -- the file, wired as `serve` wires it --------------------------------------------------------

TENANTS = f"""
[[tenants]]
name = "alice"
token_sha256 = "{token_digest(ALICE)}"

[[tenants]]
name = "bob"
token = "{BOB}"
"""


def config(text: str, backends: str = "[backends.q]\njob_seconds = 10\n") -> ServerConfig:
    """A config from TOML text: `text` ([server], [service]), the two tenants and `backends`."""
    return config_from_mapping(tomllib.loads(f"{text}\n{TENANTS}\n{backends}"), source="qmux.toml")


@asynccontextmanager
async def served(config: ServerConfig) -> AsyncIterator[tuple[qmux.Service, QmuxApp]]:
    """What ``qmux serve`` runs for `config`, wired as `qmux.server.serve` wires it, without a socket."""
    backends = list(config.backends) if config.backends is not None else None
    journal = watched_journal(config.server.journal)
    async with qmux.open_service(backends, settings=config.service, journal=journal) as service:
        yield service, create_app(service, config.tenants, config.server, journal=journal)


def client(app: QmuxApp, token: str = ALICE) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers={"authorization": f"Bearer {token}"}
    )


async def submit(http: httpx.AsyncClient, inputs: object = "x", **body: Any) -> str:
    response = await http.post("/jobs", json={"program_id": "echo", "backend": "q", "params": inputs, **body})
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


# -- [server] -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "status"), [(1000, 201), (100, 413)])
async def test_max_body_bytes_refuses_a_larger_body(autojump_clock: Clock, limit: int, status: int) -> None:
    async with served(config(f"[server]\nmax_body_bytes = {limit}\n")) as (_, app), client(app) as http:
        body = {"program_id": "echo", "backend": "q", "params": "x" * 200}
        response = await http.post("/jobs", json=body)
        assert response.status_code == status, response.text


@pytest.mark.parametrize(("written", "held"), [('"2s"', 2.0), ("5", 5.0), ('"1m"', 10.0)])
async def test_long_poll_caps_how_long_a_results_request_is_held(
    autojump_clock: Clock, written: str, held: float
) -> None:
    async with served(config(f"[server]\nlong_poll = {written}\n")) as (_, app), client(app) as http:
        job_id = await submit(http)  # 10 s of device time
        start = trio.current_time()
        response = await http.get(f"/jobs/{job_id}/results", params={"wait": 600})
        assert trio.current_time() - start == pytest.approx(held)
        assert response.status_code == (200 if held >= 10 else 202)


@pytest.mark.parametrize(("limit", "status"), [(1, 503), (2, 200)])
async def test_max_in_flight_answers_503_past_it(autojump_clock: Clock, limit: int, status: int) -> None:
    async with served(config(f"[server]\nmax_in_flight = {limit}\n")) as (_, app), client(app) as http:
        job_id = await submit(http)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(http.get, f"/jobs/{job_id}/results?wait=5")  # held: one in flight
            await trio.sleep(1)
            response = await http.get("/backends")
        assert response.status_code == status
        if status == 503:
            assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize(("limit", "status"), [(5_000_000, 201), (3_000_000, 422), (1_000_000, 422)])
async def test_max_blob_bytes_bounds_what_a_request_decompresses_to(
    autojump_clock: Clock, limit: int, status: int
) -> None:
    zeros = np.zeros(250_000)  # 2 MB once decompressed, a few kB on the wire
    arrays = _wire.encode({"x": zeros, "y": zeros})
    async with served(config(f"[server]\nmax_blob_bytes = {limit}\n")) as (_, app), client(app) as http:
        response = await http.post("/jobs", json={"program_id": "echo", "backend": "q", "params": arrays})
        assert response.status_code == status
        if status == 422:
            assert f"decompress to {limit} bytes, all together" in response.json()["error"]["message"]


@pytest.mark.parametrize(("limit", "status"), [(2, 503), (3, 200)])
async def test_max_in_flight_per_tenant_answers_503_past_it_for_that_tenant_only(
    autojump_clock: Clock, limit: int, status: int
) -> None:
    async with (
        served(config(f"[server]\nmax_in_flight_per_tenant = {limit}\n")) as (_, app),
        client(app) as alice,
        client(app, BOB) as bob,
    ):
        job_id = await submit(alice)
        async with trio.open_nursery() as nursery:
            for _ in range(2):  # two held: alice's in flight
                nursery.start_soon(alice.get, f"/jobs/{job_id}/results?wait=5")
            await trio.sleep(1)
            response = await alice.get("/backends")
            assert (await bob.get("/backends")).status_code == 200
        assert response.status_code == status
        if status == 503:
            assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize(("rate", "burst", "answered"), [(10, 5, 14), (20, 5, 24), (10, 10, 19)])
async def test_rate_and_burst_per_tenant_bound_a_tenants_requests(
    autojump_clock: Clock, rate: int, burst: int, answered: int
) -> None:
    """In one second a tenant gets its burst and its rate's worth more; then 429, and another tenant does not."""
    text = f"[server]\nrate_per_tenant = {rate}\nburst_per_tenant = {burst}\n"
    async with served(config(text)) as (_, app), client(app) as alice, client(app, BOB) as bob:
        statuses = []
        for _ in range(40):  # 40 requests spread over one second
            statuses.append((await alice.get("/backends")).status_code)
            await trio.sleep(1 / 40)
        assert statuses.count(200) == answered and set(statuses) == {200, 429}
        assert (await bob.get("/backends")).status_code == 200


async def test_max_open_sessions_per_tenant_refuses_that_tenant_past_it(autojump_clock: Clock) -> None:
    text = "[server]\nmax_open_sessions_per_tenant = 2\n"
    async with served(config(text)) as (_, app), client(app) as alice, client(app, BOB) as bob:
        for _ in range(2):
            assert (await alice.post("/sessions", json={"backend": "q"})).status_code == 201
        refused = await alice.post("/sessions", json={"backend": "q"})
        assert refused.status_code == 429 and "2 sessions open, its limit" in refused.json()["error"]["message"]
        assert (await bob.post("/sessions", json={"backend": "q"})).status_code == 201


async def test_max_queued_jobs_per_tenant_refuses_that_tenant_past_it(autojump_clock: Clock) -> None:
    text = "[server]\nmax_queued_jobs_per_tenant = 2\n"
    async with served(config(text)) as (_, app), client(app) as alice, client(app, BOB) as bob:
        for n in range(2):  # 10 s each: one runs, one waits
            await submit(alice, n)
        refused = await alice.post("/jobs", json={"program_id": "echo", "backend": "q", "params": "x"})
        assert refused.status_code == 429 and "2 jobs queued or running" in refused.json()["error"]["message"]
        await submit(bob, "b's")
        await trio.sleep(10.5)  # alice's first ended
        await submit(alice, "again")


@pytest.mark.parametrize(("timeout", "status"), [(2.0, 408), (5.0, 201)])
async def test_body_timeout_answers_408_to_a_body_slower_than_it(
    autojump_clock: Clock, timeout: float, status: int
) -> None:
    async def slowly() -> AsyncIterator[bytes]:
        for part in (b'{"program_id": "echo", ', b'"backend": "q", ', b'"params": 1}'):
            yield part
            await trio.sleep(1)  # three seconds in all

    async with served(config(f"[server]\nbody_timeout = {timeout}\n")) as (_, app), client(app) as alice:
        response = await alice.post("/jobs", content=slowly(), headers={"content-type": "application/json"})
        assert response.status_code == status


@pytest.mark.parametrize(("per_minute", "burst"), [(60, 2), (60, 4), (6, 2)])
async def test_failed_auth_per_minute_and_burst_throttle_an_address(
    autojump_clock: Clock, per_minute: int, burst: int
) -> None:
    """Wrong tokens from one address: 401 for its burst, then 429 until a failure is earned back."""
    text = f"[server]\nfailed_auth_per_minute = {per_minute}\nfailed_auth_burst = {burst}\n"
    async with served(config(text)) as (_, app), client(app, "a-wrong-token") as wrong:
        statuses = [(await wrong.get("/backends")).status_code for _ in range(burst + 1)]
        assert statuses == [401] * burst + [429]
        await trio.sleep(0.9 * 60 / per_minute)
        assert (await wrong.get("/backends")).status_code == 429
        await trio.sleep(0.1 * 60 / per_minute)
        assert [(await wrong.get("/backends")).status_code for _ in range(2)] == [401, 429]


# -- [service] ----------------------------------------------------------------------------------


async def test_idle_open_timeout_closes_a_session_given_no_job(autojump_clock: Clock) -> None:
    async with served(config('[service]\nidle_open_timeout = "30s"\n')) as (service, _):
        session = qmux.Session(service=service, backend="q")
        await trio.sleep(29.9)
        assert await session.status() == "Pending"
        await trio.sleep(0.2)
        details = await session.details()
        assert (details["state"], details["closed_reason"]) == ("closed", "idle_at_open")


@pytest.mark.parametrize(("grace", "ended_at", "outcome"), [("5", 5.0, "service_shutdown"), ('"1m"', 10.0, "done")])
async def test_shutdown_grace_is_how_long_work_may_drain(
    autojump_clock: Clock, grace: str, ended_at: float, outcome: str
) -> None:
    async with served(config(f"[service]\nshutdown_grace = {grace}\n")) as (service, _):
        job = await service.backend("q").run("echo", "x")  # 10 s of device time
    assert trio.current_time() == pytest.approx(ended_at)
    if outcome == "done":
        assert await job.result() == "x"
    else:
        with pytest.raises(qmux.JobError) as ended:
            await job.result()
        assert ended.value.reason == outcome


async def test_max_queued_jobs_per_session_refuses_past_it(autojump_clock: Clock) -> None:
    async with served(config("[service]\nmax_queued_jobs_per_session = 2\n")) as (service, _):
        session = qmux.Session(service=service, backend="q")
        await session.run("echo", "runs")
        await trio.sleep(0.1)
        for n in range(2):
            await session.run("echo", n)
        with pytest.raises(qmux.CapacityError, match="2 jobs queued, its limit"):
            await session.run("echo", "one too many")
        await session.cancel()


@pytest.mark.parametrize("limit", [1, 3])
async def test_max_mailbox_refuses_callers_past_it(autojump_clock: Clock, limit: int) -> None:
    answered: list[str] = []
    refused: list[qmux.CapacityError] = []

    async def ask(session: qmux.Session) -> None:
        try:
            answered.append(await session.status())
        except qmux.CapacityError as exc:
            refused.append(exc)

    async with served(config(f"[service]\nmax_mailbox = {limit}\n")) as (service, _):
        session = qmux.Session(service=service, backend="q")
        await trio.sleep(0.1)
        # Messages wait in the mailbox only while the actor is awake; a parked actor answers its
        # caller at once. Mark it awake, as it is between a wake-up and its next wait (as
        # tests/core/test_supervisor.py does), so that five callers meet the mailbox:
        actor = session._port
        assert isinstance(actor, SessionActor)
        actor._waiting = None
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(ask, session)
        await session.close()
    assert (len(answered), len(refused)) == (limit, 5 - limit)
    assert "mailbox limit" in str(refused[0])


async def test_max_waiting_per_backend_refuses_past_it(autojump_clock: Clock) -> None:
    async with served(config("[service]\nmax_waiting_per_backend = 2\n")) as (service, _):
        for n in range(3):  # one runs, two wait
            await service.backend("q").run("echo", n)
        await trio.sleep(0.1)
        with pytest.raises(qmux.CapacityError, match="its limit"):
            await service.backend("q").run("echo", "one too many")


async def test_max_open_sessions_refuses_past_it(autojump_clock: Clock) -> None:
    async with served(config("[service]\nmax_open_sessions = 2\n")) as (service, app), client(app) as http:
        first, second = (qmux.Session(service=service, backend="q") for _ in range(2))
        refused = await http.post("/sessions", json={"backend": "q"})
        assert refused.status_code == 429 and "sessions are open" in refused.json()["error"]["message"]
        await first.close()
        await trio.sleep(0.1)
        assert (await http.post("/sessions", json={"backend": "q"})).status_code == 201
        await second.close()


async def test_retain_finished_is_how_many_finished_jobs_are_kept(autojump_clock: Clock) -> None:
    text = "[service]\nretain_finished = 3\n"
    async with served(config(text, backends="[backends.q]\n")) as (_, app), client(app) as http:
        jobs = [await submit(http, n) for n in range(6)]
        for job_id in jobs:
            assert (await http.get(f"/jobs/{job_id}/results", params={"wait": 10})).status_code == 200
        await submit(http, "one more")
        assert (await http.get(f"/jobs/{jobs[0]}")).status_code == 404
        assert (await http.get(f"/jobs/{jobs[-1]}")).status_code == 200


@pytest.mark.parametrize(("written", "lead"), [("3", 3.0), ('"10s"', 10.0), ("0", None)])
async def test_ittl_warning_is_how_long_before_a_deactivation_it_is_announced(
    autojump_clock: Clock, written: str, lead: float | None
) -> None:
    backends = "[backends.q]\njob_seconds = 1\ninteractive_ttl = 20\n"
    async with served(config(f"[service]\nittl_warning = {written}\n", backends)) as (service, _):
        session = qmux.Session(service=service, backend="q")
        warned: list[float] = []

        async def follow() -> None:
            async for event in session.events():
                if event.kind == "session.ittl_warning":
                    warned.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            await (await session.run("echo", "x")).result()
            deactivated_at = trio.current_time() + 20  # the ITTL runs from the job's end
            await trio.sleep(25)
            nursery.cancel_scope.cancel()
        assert warned == ([] if lead is None else [pytest.approx(deactivated_at - lead)])
        await session.close()


@pytest.mark.parametrize(("written", "lead"), [('"30s"', 30.0), ("0", None)])
async def test_max_time_warning_is_how_long_before_max_time_it_is_announced(
    autojump_clock: Clock, written: str, lead: float | None
) -> None:
    backends = "[backends.q]\njob_seconds = 1\ninteractive_ttl = 600\n"
    async with served(config(f"[service]\nmax_time_warning = {written}\n", backends)) as (service, _):
        session = qmux.Session(service=service, backend="q", max_time=60)
        warned: list[float] = []

        async def follow() -> None:
            async for event in session.events():
                if event.kind == "session.max_time_warning":
                    warned.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            started = trio.current_time()
            await (await session.run("echo", "x")).result()  # max_time runs from this job's start
            await trio.sleep(70)
        assert warned == ([] if lead is None else [pytest.approx(started + 60 - lead)])
        assert (await session.details())["closed_reason"] == "max_time"


@pytest.mark.parametrize(("buffer", "lagged"), [(5, True), (1000, False)])
async def test_event_buffer_is_how_far_a_reader_may_fall_behind(
    autojump_clock: Clock, buffer: int, lagged: bool
) -> None:
    backends = "[backends.q]\njob_seconds = 1\nconcurrency = 20\n"
    async with served(config(f"[service]\nevent_buffer = {buffer}\n", backends)) as (service, _):
        stream = service.events(backend="q")
        jobs = [await service.backend("q").run("echo", n) for n in range(20)]  # 40 events and more, unread
        for job in jobs:
            await job.result()
        first = await anext(stream)
        assert (first.kind == "lagged") is lagged
        if lagged:
            assert first.data["missed"] >= 40 - buffer
            kept = [await anext(stream) for _ in range(buffer)]
            assert [event.kind for event in kept] == ["job.done"] * buffer, "the newest are kept"


async def test_max_subscribers_per_owner_bounds_a_tenants_event_streams(autojump_clock: Clock) -> None:
    async with (
        served(config("[service]\nmax_subscribers_per_owner = 2\n")) as (_, app),
        trio.open_nursery() as nursery,
        streaming_client(app, nursery, ALICE) as alice,
        streaming_client(app, nursery, BOB) as bob,
    ):
        async with alice.stream("GET", "/events") as first, alice.stream("GET", "/events") as second:
            assert (first.status_code, second.status_code) == (200, 200)
            refused = await alice.get("/events")
            assert refused.status_code == 429 and "2 event subscriptions" in refused.json()["error"]["message"]
            async with bob.stream("GET", "/events") as bobs:  # another tenant is not affected
                assert bobs.status_code == 200
        await trio.sleep(0.1)
        async with alice.stream("GET", "/events") as again:  # closing a stream gave its slot back
            assert again.status_code == 200
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(("policy", "frozen"), [("freeze", True), ("default", False)])
async def test_gc_freezes_what_start_up_allocated_while_serving(
    autojump_clock: Clock, policy: str, frozen: bool
) -> None:
    async with served(config(f'[service]\ngc = "{policy}"\n')) as (service, app), client(app) as http:
        backend = service.backend("q")
        assert gc.get_freeze_count() > 0 if frozen else gc.get_freeze_count() == 0
        assert any(obj is backend for obj in gc.get_objects()) is not frozen  # out of the collector's scans
        await submit(http)
    assert gc.get_freeze_count() == 0


# -- [[tenants]] --------------------------------------------------------------------------------


async def test_tenants_are_who_the_tokens_name(autojump_clock: Clock) -> None:
    """``token_sha256`` and ``token`` let their holder in, under the tenant's ``name``."""
    async with (
        served(config("")) as (_, app),
        client(app, ALICE) as alice,
        client(app, BOB) as bob,
        client(app, "nobodys-token") as nobody,
    ):
        job_id = await submit(alice)
        assert (await alice.get(f"/jobs/{job_id}")).status_code == 200
        assert (await bob.get(f"/jobs/{job_id}")).status_code == 404  # another tenant's: not found
        assert (await bob.get("/backends")).status_code == 200
        assert (await nobody.get("/backends")).status_code == 401
    assert [tenant.name for tenant in config("").tenants] == ["alice", "bob"]


#: the test that shows each key taking effect; a string: a test of ``tests/system/test_serve_config.py``
KEY_TESTS: dict[str, dict[str, Any]] = {
    "server": {
        "host": on_a_real_socket.test_host_and_port_are_where_serve_listens,
        "port": on_a_real_socket.test_host_and_port_are_where_serve_listens,
        "journal": on_a_real_socket.test_journal_keeps_jobs_across_a_restart_of_serve,
        "max_body_bytes": test_max_body_bytes_refuses_a_larger_body,
        "long_poll": test_long_poll_caps_how_long_a_results_request_is_held,
        "max_in_flight": test_max_in_flight_answers_503_past_it,
        "max_blob_bytes": test_max_blob_bytes_bounds_what_a_request_decompresses_to,
        "max_in_flight_per_tenant": test_max_in_flight_per_tenant_answers_503_past_it_for_that_tenant_only,
        "rate_per_tenant": test_rate_and_burst_per_tenant_bound_a_tenants_requests,
        "burst_per_tenant": test_rate_and_burst_per_tenant_bound_a_tenants_requests,
        "max_open_sessions_per_tenant": test_max_open_sessions_per_tenant_refuses_that_tenant_past_it,
        "max_queued_jobs_per_tenant": test_max_queued_jobs_per_tenant_refuses_that_tenant_past_it,
        "header_timeout": on_a_real_socket.test_header_timeout_closes_a_connection_slow_to_send_its_headers,
        "body_timeout": test_body_timeout_answers_408_to_a_body_slower_than_it,
        "failed_auth_per_minute": test_failed_auth_per_minute_and_burst_throttle_an_address,
        "failed_auth_burst": test_failed_auth_per_minute_and_burst_throttle_an_address,
        "certfile": on_a_real_socket.test_certfile_and_keyfile_serve_https_that_connect_verifies,
        "keyfile": on_a_real_socket.test_certfile_and_keyfile_serve_https_that_connect_verifies,
        "metrics": test_metrics.test_metrics_mode_decides_who_may_read_them,
        "metrics_token_sha256": test_metrics.test_metrics_mode_decides_who_may_read_them,
        "metrics_tenant_label": test_metrics.test_tenant_label_splits_series_by_tenant_only_when_configured,
    },
    "service": {
        "idle_open_timeout": test_idle_open_timeout_closes_a_session_given_no_job,
        "shutdown_grace": test_shutdown_grace_is_how_long_work_may_drain,
        "max_queued_jobs_per_session": test_max_queued_jobs_per_session_refuses_past_it,
        "max_mailbox": test_max_mailbox_refuses_callers_past_it,
        "max_waiting_per_backend": test_max_waiting_per_backend_refuses_past_it,
        "max_open_sessions": test_max_open_sessions_refuses_past_it,
        "retain_finished": test_retain_finished_is_how_many_finished_jobs_are_kept,
        "ittl_warning": test_ittl_warning_is_how_long_before_a_deactivation_it_is_announced,
        "max_time_warning": test_max_time_warning_is_how_long_before_max_time_it_is_announced,
        "event_buffer": test_event_buffer_is_how_far_a_reader_may_fall_behind,
        "max_subscribers_per_owner": test_max_subscribers_per_owner_bounds_a_tenants_event_streams,
        "gc": test_gc_freezes_what_start_up_allocated_while_serving,
    },
    "cluster": {  # real nodes on a real database: tests/system/test_cluster_*.py
        "node": on_several_nodes.test_V1_any_node_answers_for_every_backend,
        "advertise_url": on_several_nodes.test_V1_any_node_answers_for_every_backend,
        "lease": on_several_nodes.test_J4_a_node_cut_off_from_the_database_stops_before_its_lease_can_be_taken,
        "prefer": on_several_nodes.test_J4_a_node_stopped_gracefully_hands_its_backend_over_at_once,
    },
    "tenants": {
        "name": test_tenants_are_who_the_tokens_name,
        "token_sha256": test_tenants_are_who_the_tokens_name,
        "token": test_tenants_are_who_the_tokens_name,
    },
}
TABLES = {"server": ServerSettings, "service": qmux.ServiceSettings, "tenants": Tenant, "cluster": ClusterSettings}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_key_has_a_test_that_it_takes_effect_and_is_documented(table: str) -> None:
    """A field added to ServerSettings, ServiceSettings or Tenant is a key: it needs a test and a line."""
    keys = [field.name for field in attrs.fields(TABLES[table])] + (["token"] if table == "tenants" else [])
    assert sorted(KEY_TESTS[table]) == sorted(keys)
    heading = f"[{table}]" if table != "tenants" else "[[tenants]]"
    docstring = qmux.server._config.__doc__ or ""
    section = docstring.split(heading, 1)[1].split("\n\n", 1)[0]
    readme = README.read_text(encoding="utf-8").split("```toml\n[server]", 1)[1].split("```", 1)[0]
    in_readme = ("[server]" + readme).split(heading, 1)[1].split("\n\n", 1)[0]
    for key in keys:
        assert f"\n    {key} = " in section, f"{key} is not documented in qmux/server/_config.py"
        assert f"{key} = " in in_readme, f"{key} is not documented in the README"


# -- mistakes -----------------------------------------------------------------------------------

A_TENANT = [{"name": "a", "token": "long-enough"}]


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({}, "qmux.toml: no [[tenants]] table; give at least one"),
        ({"tenants": []}, "qmux.toml: no tenants: give at least one [[tenants]] table, with a name and a token_sha256"),
        ({"tenants": {"name": "a"}}, "qmux.toml: tenants must be an array of tables ([[tenants]]), not a table"),
        ({"tenants": [{"name": "a"}]}, "[[tenants]] #1 needs exactly one of token_sha256 and token"),
        ({"tenants": [{"name": "a", "token": "x" * 10, "token_sha256": "0" * 64}]}, "#1 needs exactly one"),
        ({"tenants": [{"name": "a", "token_sha256": "XYZ"}]}, "#1 token_sha256 must be 64 lowercase hex"),
        ({"tenants": [{"name": "a", "token": "short"}]}, "#1 token must be a string of 8 or more characters"),
        ({"tenants": [*A_TENANT, {"name": "a b", "token": "long-enough"}]}, "[[tenants]] #2 name='a b' must be 1-64"),
        ({"tenants": [*A_TENANT, {"token": "long-enough"}]}, "[[tenants]] #2 name is missing; it is required"),
        ({"tenants": [*A_TENANT, 7]}, "[[tenants]] #2 must be a table, not an integer"),
        (
            {"tenants": [{"name": "a", "token": "long-enough", "role": "admin"}]},
            "[[tenants]] #1 unknown key 'role'; allowed keys: name, token_sha256, token",
        ),
        ({"server": {"prot": 1}, "tenants": A_TENANT}, "qmux.toml: [server] unknown key 'prot'; allowed keys: host,"),
        ({"server": {"port": 70000}, "tenants": A_TENANT}, "[server] port=70000 must be a TCP port, 0-65535"),
        ({"server": {"port": "80"}, "tenants": A_TENANT}, "[server] port='80' must be a TCP port"),
        ({"server": {"host": ""}, "tenants": A_TENANT}, "[server] host='' must be a non-empty string"),
        ({"server": {"long_poll": 0}, "tenants": A_TENANT}, "[server] long_poll=0 must be a positive, finite number"),
        ({"server": {"long_poll": "soon"}, "tenants": A_TENANT}, "[server] long_poll='soon' is not a duration"),
        ({"service": {"grace": 1}, "tenants": A_TENANT}, "[service] unknown key 'grace'; allowed keys: idle_open_"),
        ({"service": {"shutdown_grace": -1}, "tenants": A_TENANT}, "[service] shutdown_grace=-1 must be a finite"),
        ({"service": {"max_mailbox": 1.5}, "tenants": A_TENANT}, "[service] max_mailbox=1.5 must be a positive whole"),
        ({"server": [], "tenants": A_TENANT}, "qmux.toml: [server] must be a table, not an array"),
        ({"tenants": A_TENANT, "backends": {"b": {"qubits": 3}}}, "[backends.b] unknown key 'qubits'; allowed keys:"),
        ({"tenants": A_TENANT, "backends": {}}, "qmux.toml: no backends: give at least one [backends.<name>] table"),
        ({"tenants": A_TENANT, "backends": []}, "qmux.toml: [backends] must hold one [backends.<name>] table per"),
        (
            {"tenants": A_TENANT, "cluster": {"node": "n1", "advertise_url": "http://10.0.0.5:8765"}},
            "[cluster] needs the nodes' shared journal: [server] journal = \"postgresql://",
        ),
        ({"tenants": A_TENANT, "cluster": {"node": "n1"}}, "[cluster] advertise_url is missing; it is required"),
        (
            {"tenants": A_TENANT, "cluster": {"node": "n1", "advertise_url": "10.0.0.5:8765"}},
            "[cluster] advertise_url='10.0.0.5:8765' must be an http(s) base URL",
        ),
        (
            {"tenants": A_TENANT, "cluster": {"node": "n1", "advertise_url": "http://a:1", "lease": "200ms"}},
            "[cluster] lease='200ms' is not a duration",
        ),
        (
            {"tenants": A_TENANT, "cluster": {"node": "n1", "advertise_url": "http://a:1", "lease": 0.5}},
            "lease=0.5 is too short: a node renews at a third of it; use 1.0 s or more",
        ),
    ],
)
def test_config_mistakes_name_the_file_the_table_and_the_key(document: dict[str, Any], words: str) -> None:
    with pytest.raises(qmux.InvalidInputError) as refused:
        config_from_mapping(document, source="qmux.toml")
    assert str(refused.value).startswith("qmux.toml: ") and words in str(refused.value)


def test_every_mistake_of_the_file_is_listed_at_once() -> None:
    document = {
        "server": {"port": -1, "journal": ""},
        "service": {"idle_open_timeout": "never"},
        "tenants": [{"name": "ok", "token": "long-enough"}, {"name": "", "token_sha256": "a" * 64}],
        "backends": {"q": {"concurrency": 0}},
    }
    with pytest.raises(qmux.InvalidInputError) as refused:
        config_from_mapping(document, source="qmux.toml")
    assert str(refused.value).splitlines() == [
        "qmux.toml: 5 mistakes:",
        "  - [[tenants]] #2 name='' must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a "
        "letter or digit",
        "  - [server] port=-1 must be a TCP port, 0-65535 (0: any free port)",
        "  - [server] journal='' must be a non-empty string",
        "  - [service] idle_open_timeout='never' is not a duration; use a positive number of seconds or a string "
        "such as '90s', '25m', '2h' or '1h30m'",
        "  - [backends.q] concurrency=0 must be a positive whole number",
    ]


def test_a_token_pasted_as_its_digest_is_not_echoed() -> None:
    with pytest.raises(qmux.InvalidInputError) as refused:
        config_from_mapping({"tenants": [{"name": "a", "token_sha256": "my-secret-token"}]}, source="qmux.toml")
    assert "my-secret-token" not in str(refused.value)


def test_a_missing_or_broken_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(qmux.InvalidInputError, match="no config file"):
        load_config(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\n")
    with pytest.raises(qmux.InvalidInputError, match="not valid TOML"):
        load_config(broken)


# -- tenants and tokens ---------------------------------------------------------------------------


def test_tenants_need_distinct_names_and_tokens() -> None:
    with pytest.raises(qmux.InvalidInputError, match="two tenants are named 'a'"):
        TokenAuth([Tenant.from_token("a", "token-one-1"), Tenant.from_token("a", "token-two-2")])
    with pytest.raises(qmux.InvalidInputError, match="the same token"):
        TokenAuth([Tenant.from_token("a", "token-one-1"), Tenant.from_token("b", "token-one-1")])
    with pytest.raises(qmux.InvalidInputError, match="at least one tenant"):
        TokenAuth([])


@pytest.mark.parametrize(
    ("header", "tenant"),
    [
        ("Bearer token-one-1", "a"),
        ("bearer   token-one-1  ", "a"),
        ("BEARER token-one-1", "a"),
        ("Bearer token-one-2", None),
        ("Basic token-one-1", None),
        ("token-one-1", None),
        ("Bearer", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_headers_are_parsed_strictly(header: str | None, tenant: str | None) -> None:
    assert TokenAuth([Tenant.from_token("a", "token-one-1")]).tenant(header) == tenant


def test_tenants_keep_only_the_digest() -> None:
    tenant = Tenant.from_token("a", "token-one-1")
    assert tenant.token_sha256 == token_digest("token-one-1") and "token-one-1" not in repr(tenant)
    with pytest.raises(qmux.InvalidInputError, match="tenant 'a': token must be a string of 8 or more") as refused:
        Tenant.from_token("a", "secret")
    assert "secret" not in str(refused.value)
