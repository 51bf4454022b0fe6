"""``qmux.connect`` given several nodes: it keeps working while one of them fails.

The nodes are front doors to one service in memory (`tests.support.nodes`): any of them answers
any request, as a cluster's nodes do. The client uses one node while it answers; one that
refuses connections, dies mid-request or shuts down is left for the next. A request that cannot
have reached a node is sent to the next, whatever it is; a job's submission that may have been
received is never sent twice (SPEC J4 asks that an accepted job end once, not that it run twice),
and the error says how to look for it. On the virtual clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import structlog.testing
import trio
import trio.testing
from trio.abc import Clock

import qmux
from qmux._remote import RemoteService
from qmux._remote._nodes import node_urls
from qmux.testing import job, qpu

from ..support.nodes import Nodes, nodes_of
from ..support.remote import TOKEN, served_app

A, B, C = "a.test", "b.test", "c.test"


@asynccontextmanager
async def cluster(
    count: int = 2, *, before: Any = None, **connect: Any
) -> AsyncIterator[tuple[qmux.Service, Nodes, RemoteService]]:
    """One service on "q" behind `count` nodes; a client connected with every node's URL.
    `before(nodes)` runs before the client connects."""
    async with served_app([qpu("q")]) as (local, app), nodes_of(app, count) as nodes:
        if before is not None:
            before(nodes)
        async with qmux.connect(nodes.urls, token=TOKEN, transport=nodes, **connect) as remote:
            yield local, nodes, remote


def submissions(nodes: Nodes) -> list[httpx.Request]:
    """The job submissions that reached the service, from any node."""
    return [r for r in nodes.reached if r.method == "POST" and r.url.path == "/jobs"]


async def test_J4_a_node_that_refuses_connections_is_left_for_the_next_and_no_request_is_lost(
    autojump_clock: Clock,
) -> None:
    with structlog.testing.capture_logs() as logs:
        async with cluster(before=lambda nodes: nodes.kill(A)) as (_, nodes, remote):
            assert remote.urls == ("http://a.test", "http://b.test")
            assert remote.url == "http://b.test"  # the backends were read from b
            session = qmux.Session(service=remote, backend="q")
            assert await (await session.run("script", job(1, value=7))).result() == 7
            await session.close()
    assert len(nodes.sent_to(A)) == 1, "a is tried once, then the connection stays on b"
    assert len(submissions(nodes)) == 1
    left = [entry for entry in logs if entry["event"] == "remote.node_left"]
    assert [(e["node"], e["now_using"]) for e in left] == [("http://a.test", "http://b.test")]
    assert "ConnectError" in left[0]["why"]
    assert TOKEN not in repr(logs), "the token is never logged"


async def test_J4_a_submission_that_cannot_have_reached_a_dead_node_goes_to_the_next_once(
    autojump_clock: Clock,
) -> None:
    async with cluster() as (_, nodes, remote):
        session = qmux.Session(service=remote, backend="q")
        await (await session.run("script", job(1))).result()
        nodes.kill(A)  # between two requests: the next one cannot connect
        second = await session.run("script", job(1, value="second"))
        assert await second.result() == "second"
        assert [r.url.host for r in submissions(nodes)] == [A, B], "each submission reached the service once"
        assert len([j async for j in remote.jobs(session_id=session.session_id)]) == 2


async def test_J4_a_long_poll_cut_by_a_dying_node_goes_on_at_the_next_and_returns_the_result(
    autojump_clock: Clock,
) -> None:
    async with cluster() as (_, nodes, remote):
        running = await remote.backend("q").run("script", job(10, value={"x": 1}))
        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_kill_later, nodes, A, 3)
            assert await running.result() == {"x": 1}
        assert trio.current_time() - started == pytest.approx(10, abs=0.5), "no waiting beyond the job's own"
        polls = [r.url.host for r in nodes.sent if r.url.path.endswith("/results")]
        assert polls == [A, B], "one long poll on a, cut; the next on b, which returns the result"


async def _kill_later(nodes: Nodes, host: str, seconds: float) -> None:
    await trio.sleep(seconds)
    nodes.kill(host)


async def test_J4_a_submission_that_may_have_been_received_is_not_sent_twice_and_the_error_says_how_to_look(
    autojump_clock: Clock,
) -> None:
    async with cluster() as (local, nodes, remote):
        session = qmux.Session(service=remote, backend="q")
        await session.status()  # created on the server
        nodes.kill_after(A, lambda request: request.method == "POST" and request.url.path == "/jobs")
        with pytest.raises(qmux.OutcomeUnknownError) as raised:
            await session.run("script", job(1), tags=["try-1"])
        message = str(raised.value)
        assert "may or may not have been accepted" in message
        assert "was not sent again" in message and "http://a.test" in message
        assert f"service.jobs(session_id={session.session_id!r}, tags=['try-1'], created_after=" in message
        assert f"qmux jobs --session {session.session_id} --tag try-1 --since " in message
        assert raised.value.node == "http://a.test"
        assert not isinstance(raised.value, qmux.ServiceClosedError), "not an error that invites sending again"
        assert len(submissions(nodes)) == 1, "the service saw the submission once"
        # what the message says to do finds it, through the next node
        found = [j async for j in remote.jobs(session_id=session.session_id, tags=["try-1"])]
        assert len(found) == 1 and await found[0].status() in ("QUEUED", "RUNNING", "DONE")
        assert remote.url == "http://b.test"
        assert local.stats()["open_sessions"] == 1


async def test_every_node_down_is_a_bounded_wait_then_an_error_that_names_each(autojump_clock: Clock) -> None:
    async with served_app([qpu("q")]) as (_, app), nodes_of(app) as nodes:
        nodes[B].failure = httpx.ConnectTimeout  # a machine gone, not a refusal
        nodes.kill(A)
        nodes.kill(B)
        started = trio.current_time()
        with pytest.raises(qmux.ServiceClosedError) as raised:
            async with qmux.connect(nodes.urls, token=TOKEN, transport=nodes, retries=2):
                pass
    assert len(nodes.sent) == 6, "three rounds over the two nodes"
    message = str(raised.value)
    assert message.startswith("no qmux node answered GET /backends: ")
    assert "http://a.test: ConnectError: connection refused" in message
    assert "http://b.test: ConnectTimeout: connection refused" in message
    assert trio.current_time() - started <= 0.25 + 0.5, "two pauses between three rounds, capped backoff"


async def test_every_node_down_sends_each_try_to_each_node(autojump_clock: Clock) -> None:
    sent: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url.host))
        raise httpx.ConnectError("connection refused", request=request)

    urls = ["http://a.test", "http://b.test", "http://c.test"]
    with pytest.raises(qmux.ServiceClosedError, match="no qmux node answered"):
        async with qmux.connect(urls, token=TOKEN, transport=httpx.MockTransport(refuse), retries=1):
            pass
    assert sent == [A, B, C, A, B, C], "two rounds over the three nodes, in the order given"


async def test_E1_an_event_stream_cut_by_a_dying_node_resumes_on_the_next_with_no_event_lost_or_repeated(
    autojump_clock: Clock,
) -> None:
    async with cluster() as (_, nodes, remote):
        session = qmux.Session(service=remote, backend="q")
        seen: list[qmux.Event] = []

        async def follow(task_status: trio.TaskStatus[None]) -> None:
            async with session.events() as events:  # once the server listens
                task_status.started()
                seen.extend([event async for event in events])

        async with trio.open_nursery() as nursery:
            await nursery.start(follow)
            await (await session.run("script", job(2))).result()
            nodes.kill(A)
            await (await session.run("script", job(2))).result()
            await session.close()
        kinds = [event.kind for event in seen]
        assert kinds == [
            "session.open",
            "job.queued",
            "session.active",
            "job.running",
            "job.done",
            "job.queued",
            "job.running",
            "job.done",
            "session.closed",
        ]
        assert [event.seq for event in seen] == sorted({event.seq for event in seen}), "each once, in order"
        streams = [r for r in nodes.sent if r.url.path == "/events"]
        assert [r.url.host for r in streams] == [A, B]
        assert streams[1].headers["last-event-id"] == str(seen[4].seq), "resumed after the last event read on a"


async def test_E1_a_stream_of_all_events_goes_on_at_the_next_node_when_its_node_shuts_down(
    autojump_clock: Clock,
) -> None:
    async with cluster() as (_, nodes, remote), remote.events() as events:
        first = await remote.backend("q").run("script", job(1))
        await first.result()
        nodes.drain(A)  # a graceful stop: a's streams end, and it refuses new work with 503
        second = await remote.backend("q").run("script", job(1))  # refused by a before anything: sent to b
        await second.result()
        kinds: list[tuple[str | None, str]] = []
        while len(kinds) < 6:
            event = await anext(events)
            kinds.append((event.job_id, event.kind))
        assert kinds == [
            (first.job_id, "job.queued"),
            (first.job_id, "job.running"),
            (first.job_id, "job.done"),
            (second.job_id, "job.queued"),
            (second.job_id, "job.running"),
            (second.job_id, "job.done"),
        ]
        assert [r.url.host for r in submissions(nodes)] == [A, B]
        streams = [r for r in nodes.sent if r.url.path == "/events"]
        assert [r.url.host for r in streams] == [A, B]
        assert "last-event-id" in streams[1].headers


def test_several_urls_are_a_list_or_commas_here_and_in_qmux_url() -> None:
    assert node_urls(["http://a:8765", "http://b:8765"], {}) == ("http://a:8765", "http://b:8765")
    assert node_urls(" http://a:8765 , https://b/qmux", {}) == ("http://a:8765", "https://b/qmux")
    assert node_urls(None, {"QMUX_URL": "http://a:1,http://b:2"}) == ("http://a:1", "http://b:2")
    assert node_urls("", {}) == ("http://127.0.0.1:8765",)
    assert node_urls("http://a:8765", {"QMUX_URL": "http://b:1"}) == ("http://a:8765",)
    for bad, words in [
        ([], "has an empty entry"),
        ("http://a,,http://b", "has an empty entry"),
        ("ftp://a", "is not the base URL of a qmux server"),
        ("a.test:8765", "is not the base URL of a qmux server"),
        ("http://a/?x=1", "is not the base URL of a qmux server"),
        ("http://a:8765,http://a:8765/", "http://a:8765/ is given twice"),
        ("http://u:secret@a,http://u:secret@a", "http://a is given twice"),
        ([b"http://a"], "must be a URL, several separated by commas, or a list of URLs"),
    ]:
        with pytest.raises(qmux.InvalidInputError, match=words.replace("?", r"\?")):
            node_urls(bad, {})  # type: ignore[arg-type]


async def test_requests_keep_each_node_s_path_prefix(autojump_clock: Clock) -> None:
    """Nodes behind proxies may serve qmux under a path: each request goes under its node's."""
    paths: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        paths.append(f"{request.url.host}{request.url.raw_path.decode()} {request.headers['host']}")
        if request.url.host == A:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"devices": []})

    urls = "http://a.test/one/, http://b.test:8080/two"
    async with qmux.connect(urls, token=TOKEN, transport=httpx.MockTransport(handle)) as remote:
        await remote.refresh()
    assert paths == ["a.test/one/backends a.test", "b.test/two/backends b.test:8080", "b.test/two/backends b.test:8080"]
