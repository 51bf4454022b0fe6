"""The operators' commands in process: what they print (tables and ``--json``) and the exit status scripts read.

Each command is parsed by the real ``qmux`` parser and run by `run_command` against the HTTP app
in memory (``httpx.ASGITransport``), on the virtual clock. The same commands against a real
``qmux serve`` process are ``tests/system/test_cli.py``.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio
import trio.testing

import qmux
from qmux._cli._commands import Output, run_command, run_from_parser
from qmux._cli._exit import Exit
from qmux._cli._main import build_parser
from qmux._remote import RemoteService
from qmux.server import QmuxApp, create_app
from qmux.testing import job, qpu

from ..support.nodes import nodes_of
from ..support.remote import BASE_URL, OTHER_TOKEN, TENANTS, TOKEN

Clock = trio.testing.MockClock
UNKNOWN = "0123456789abcdef0123"


@attrs.frozen
class Ran:
    status: Exit
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@attrs.define
class Cli:
    """``qmux <argv>`` against one app, in memory."""

    app: QmuxApp
    capsys: pytest.CaptureFixture[str]

    async def __call__(self, *argv: str, token: str | None = TOKEN, width: int = 100) -> Ran:
        args = build_parser().parse_args([*argv, "--url", BASE_URL])
        stream = io.StringIO()
        out = Output(json=getattr(args, "json", False), stream=stream, width=width)
        environ = {"QMUX_TOKEN": token} if token is not None else {}
        self.capsys.readouterr()
        status = await run_command(
            args.operators_command, args, out, environ=environ, transport=httpx.ASGITransport(app=self.app)
        )
        err = self.capsys.readouterr().err
        return Ran(status, stream.getvalue(), err)


@asynccontextmanager
async def cli(
    capsys: pytest.CaptureFixture[str], backends: Sequence[qmux.Backend] | None = None
) -> AsyncIterator[tuple[Cli, qmux.Service]]:
    async with qmux.open_service(backends or [qpu("q"), qpu("sim", simulator=True, concurrency=4)]) as service:
        yield Cli(create_app(service, TENANTS), capsys), service


@asynccontextmanager
async def tenant(app: QmuxApp, token: str = TOKEN) -> AsyncIterator[RemoteService]:
    async with qmux.connect(BASE_URL, token=token, transport=httpx.ASGITransport(app=app)) as service:
        yield service


# -- backends -----------------------------------------------------------------------------------


async def test_backends_table_and_json(autojump_clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    async with cli(capsys) as (run, _), tenant(run.app) as service:
        for _ in range(3):
            await service.backend("q").run("p", job(10))
        await trio.sleep(1)
        table = await run("backends")
        data = await run("backends", "--json")
    assert table.status == data.status == Exit.OK
    header, _, q, sim = table.out.splitlines()
    assert header.split() == ["backend", "qubits", "kind", "operational", "pending", "max_ttl", "ITTL"]
    assert q.split() == ["q", "127", "QPU", "yes", "2", "1h", "10s"]  # one runs, two wait
    assert sim.split()[:5] == ["sim", "127", "simulator", "yes", "0"]
    by_name = {backend["name"]: backend for backend in data.json()}
    assert by_name["q"]["pending_jobs"] == 2 and by_name["sim"]["simulator"] is True
    assert by_name["q"]["configuration"]["interactive_ttl"] == 10.0


# -- show ---------------------------------------------------------------------------------------


async def test_show_a_session_gives_its_state_times_and_usage(
    autojump_clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    async with cli(capsys) as (run, _), tenant(run.app) as service:
        session = qmux.Session(service=service, backend="q", max_time="10m")
        await (await session.run("p", job(3))).result()
        table = await run("show", session.session_id)
        data = await run("show", session.session_id, "--json")
        await session.close()
        closed = await run("show", session.session_id, "--json")
    assert table.status == Exit.OK
    lines = dict(line.split(None, 1) for line in table.out.splitlines()[1:] if line.strip())
    assert table.out.startswith(f"session {session.session_id}")
    assert lines["status"].strip() == "In progress, accepting new jobs"
    assert lines["state"].strip() == "active" and lines["max_time"].strip() == "10m"
    assert lines["usage_time"].strip() == "3s"
    assert lines["history"].startswith("open ") and ", active " in lines["history"]
    details = data.json()
    assert (details["kind"], details["id"], details["state"], details["usage_time"]) == (
        "session",
        session.session_id,
        "active",
        3.0,
    )
    assert (closed.json()["state"], closed.json()["closed_reason"]) == ("closed", "closed")


async def test_show_a_job_gives_its_status_metrics_and_why_it_failed(
    autojump_clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    async with cli(capsys) as (run, _), tenant(run.app) as service:
        session = qmux.Session(service=service, backend="q")
        root = await session.run("p", job(1))
        failed = await session.run("p", job(2, fail="the fridge warmed up"))
        await trio.sleep(5)
        table = await run("show", failed.job_id)
        data = await run("show", failed.job_id, "--json")
        as_job = await run("show", root.job_id, "--job", "--json")  # the root job has the session's id
        await session.close()
    assert table.status == Exit.OK and table.out.startswith(f"job {failed.job_id}")
    assert "the fridge warmed up" in table.out
    view = data.json()
    assert (view["kind"], view["status"], view["session_id"], view["backend"]) == (
        "job",
        "ERROR",
        session.session_id,
        "q",
    )
    assert view["error"]["reason"] == "backend_error" and "the fridge warmed up" in view["error"]["message"]
    assert view["metrics"]["queue_seconds"] == pytest.approx(1.0)
    assert view["metrics"]["usage"]["quantum_seconds"] == pytest.approx(2.0)
    assert (as_job.json()["kind"], as_job.json()["status"]) == ("job", "DONE")


async def test_an_unknown_or_another_tenants_id_is_refused_with_status_1(
    autojump_clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    async with cli(capsys) as (run, _), tenant(run.app, OTHER_TOKEN) as bob:
        theirs = qmux.Session(service=bob, backend="q")
        await theirs.run("p", job(1))
        for ident in (UNKNOWN, theirs.session_id):
            for command in ("show", "close", "cancel"):
                ran = await run(command, ident)
                assert ran.status == Exit.REFUSED == 1
                assert ran.out == "" and f"qmux {command}: no session or job with id '{ident}'" in ran.err
        assert await theirs.status() == "In progress, accepting new jobs"  # untouched
        await theirs.close()


# -- close and cancel ----------------------------------------------------------------------------


async def test_close_lets_queued_jobs_run_and_cancel_fails_them(
    autojump_clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    async with cli(capsys) as (run, _), tenant(run.app) as service:
        closing = qmux.Session(service=service, backend="q")
        kept = [await closing.run("p", job(2)) for _ in range(2)]
        await trio.sleep(0.5)
        closed = await run("close", closing.session_id)
        assert closed.status == Exit.OK
        assert closed.out.strip() == f"closed session {closing.session_id}: In progress, not accepting new jobs"
        assert [await each.result() for each in kept] == [each.job_id for each in kept]  # they still ran

        cancelling = qmux.Session(service=service, backend="q")
        running, queued = [await cancelling.run("p", job(5)) for _ in range(2)]
        await trio.sleep(0.5)
        cancelled = await run("cancel", cancelling.session_id, "--json")
        assert cancelled.status == Exit.OK
        assert (cancelled.json()["action"], cancelled.json()["accepting_jobs"]) == ("cancelled", False)
        assert await queued.status() == "CANCELLED"
        assert await running.result() == running.job_id  # a running job finishes (S13)


async def test_cancel_a_job_and_close_refuses_a_job(autojump_clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    async with cli(capsys) as (run, _), tenant(run.app) as service:
        lone = await service.backend("q").run("p", job(100))
        refused = await run("close", lone.job_id)
        assert refused.status == Exit.USAGE
        assert f"{lone.job_id} is a job; close takes a session (to stop a job: qmux cancel" in refused.err
        cancelled = await run("cancel", lone.job_id)
        assert cancelled.status == Exit.OK
        assert cancelled.out.strip() == f"cancelled job {lone.job_id}: CANCELLED"
        again = await run("cancel", lone.job_id, "--json")  # harmless once it has ended (S16)
        assert (again.status, again.json()["status"]) == (Exit.OK, "CANCELLED")


# -- tokens, connections, exit statuses ----------------------------------------------------------


async def test_the_token_comes_from_a_file_or_the_environment_and_is_never_printed(
    autojump_clock: Clock, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    wrong = "a-wrong-token-0123456789"
    async with cli(capsys) as (run, _):
        from_file = await run("backends", "--token-file", str(token_file), token=None)
        from_environment = await run("backends")
        none = await run("backends", token=None)
        missing = await run("backends", "--token-file", str(tmp_path / "nope"), token=None)
        refused = await run("backends", token=wrong)
    assert from_file.status == from_environment.status == Exit.OK
    assert (none.status, none.err.strip()) == (
        Exit.USAGE,
        "qmux backends: no token: set QMUX_TOKEN, or pass --token-file FILE",
    )
    assert missing.status == Exit.USAGE and "cannot read the token file" in missing.err
    assert refused.status == Exit.UNAUTHORIZED == 4
    for ran in (from_file, from_environment, none, missing, refused):
        assert TOKEN not in ran.out + ran.err and wrong not in ran.out + ran.err


class Unreachable(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)


async def test_a_server_that_does_not_answer_is_status_3(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["backends", "--url", "http://127.0.0.1:1"])
    with trio.fail_after(30):
        status = await run_command(
            args.operators_command, args, Output(json=False), environ={"QMUX_TOKEN": TOKEN}, transport=Unreachable()
        )
    assert status == Exit.UNREACHABLE == 3
    assert "did not answer GET /backends: ConnectError" in capsys.readouterr().err


@pytest.mark.parametrize(
    "urls", [["--url", "http://a.test", "--url", "http://b.test"], ["--url", "http://a.test, http://b.test"]]
)
async def test_several_nodes_repeated_or_with_commas_and_a_dead_one_is_left_for_the_next(
    autojump_clock: Clock, capsys: pytest.CaptureFixture[str], urls: list[str]
) -> None:
    async with cli(capsys) as (run, _), nodes_of(run.app) as nodes:
        nodes.kill("a.test")
        args = build_parser().parse_args(["backends", "--json", *urls])
        stream = io.StringIO()
        out = Output(json=True, stream=stream)
        status = await run_command(args.operators_command, args, out, environ={"QMUX_TOKEN": TOKEN}, transport=nodes)
    assert status == Exit.OK, capsys.readouterr().err
    assert [backend["name"] for backend in json.loads(stream.getvalue())] == ["q", "sim"]
    assert [request.url.host for request in nodes.sent] == ["a.test", "b.test", "b.test"]


def test_bad_arguments_are_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["show"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["jobs", "--limit", "0"])
    assert exited.value.code == 2 and "'0' is not a whole number, 1 or more" in capsys.readouterr().err


def test_without_rich_a_table_names_the_extra_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "rich" else real(name, *a))
    args = build_parser().parse_args(["backends", "--url", "http://127.0.0.1:1"])
    assert run_from_parser(args.operators_command, args, {"QMUX_TOKEN": TOKEN}) == Exit.USAGE
    assert "needs the cli extra to draw tables (rich): pip install 'qmux[cli]'; or --json" in capsys.readouterr().err


# -- listing and events (SPEC V1, E1): run once the client has them ------------------------------


async def test_sessions_lists_newest_first_with_filters(
    autojump_clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    async with cli(capsys) as (run, _), tenant(run.app) as service:
        first = qmux.Session(service=service, backend="q")
        await first.run("p", job(1))
        await trio.sleep(2)
        second = qmux.Session(service=service, backend="sim")
        await second.run("p", job(1))
        await trio.sleep(2)
        await first.close()
        everything = await run("sessions", "--json")
        on_sim = await run("sessions", "--backend", "sim", "--json")
        closed = await run("sessions", "--state", "closed", "--json")
        table = await run("sessions")
        await second.close()
    assert [view["id"] for view in everything.json()][:2] == [second.session_id, first.session_id]
    assert [view["id"] for view in on_sim.json()] == [second.session_id]
    assert [view["id"] for view in closed.json()] == [first.session_id]
    assert first.session_id in table.out and "closed" in table.out


async def test_jobs_lists_with_status_and_session_filters(
    autojump_clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    async with cli(capsys) as (run, _), tenant(run.app) as service:
        session = qmux.Session(service=service, backend="q")
        ok = await session.run("p", job(1))
        await trio.sleep(0.01)  # newest first is by creation time: on a virtual clock, make them differ
        bad = await session.run("p", job(1, fail="no"))
        await trio.sleep(0.01)
        lone = await service.backend("sim").run("p", job(1))
        await trio.sleep(5)
        failed = await run("jobs", "--status", "ERROR", "--json")
        in_session = await run("jobs", "--session", session.session_id, "--json")
        limited = await run("jobs", "--limit", "1", "--json")
        await session.close()
    assert [view["id"] for view in failed.json()] == [bad.job_id]
    assert {view["id"] for view in in_session.json()} == {ok.job_id, bad.job_id}
    assert [view["id"] for view in limited.json()] == [lone.job_id]


async def test_watch_prints_a_sessions_events_until_it_has_closed(
    autojump_clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    async with cli(capsys) as (run, _), tenant(run.app) as service:
        session = qmux.Session(service=service, backend="q")
        await session.status()  # created on the server before `qmux watch` asks for it
        async with trio.open_nursery() as nursery:

            async def work() -> None:
                await trio.sleep(1)
                await (await session.run("p", job(1))).result()
                await session.close()

            nursery.start_soon(work)
            with trio.fail_after(60):
                ran = await run("watch", "--session", session.session_id, "--json")
    assert ran.status == Exit.OK, ran.err
    kinds = [json.loads(line)["kind"] for line in ran.out.splitlines()]
    assert kinds[0] == "session.open" and kinds[-1] == "session.closed"
    assert "job.running" in kinds and "job.done" in kinds
