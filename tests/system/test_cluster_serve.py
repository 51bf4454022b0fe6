"""Three ``qmux serve`` nodes on loopback sharing a real PostgreSQL database (issue: beyond one machine).

Each node prefers one of the backends a, b and c and configures all three. Checked with the
real remote client, as a user would: any node answers for every backend (forwarding); a node
killed with SIGKILL under load from many clients loses nothing acknowledged (every such job is
found through a surviving node in exactly one terminal state, SPEC J4); a node stopped with
SIGTERM hands its backend over at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.lowlevel

import qmux
from qmux.server import LEASE_LOST

from ..support.cluster import TOKEN, NodeProcess, Relay, start_nodes

LEASE = 2.0
LAYOUT = {"n1": ["a"], "n2": ["b"], "n3": ["c"]}
OWNER = {"a": 0, "b": 1, "c": 2}
#: what a request about a backend whose owner just stopped answers, before another node has it:
#: 503 (no owner now), or the dead owner cannot be reached; never acknowledged, so tried again
BETWEEN_NODES = (qmux.ServiceClosedError, qmux.BackendUnavailableError, qmux.StorageError)


@pytest.fixture
def nodes(tmp_path: Path, postgres_url: str) -> Iterator[list[NodeProcess]]:
    started = start_nodes(tmp_path, postgres_url, LAYOUT, lease=LEASE, job_seconds=0.02)
    try:
        yield started
    finally:
        for node in started:
            node.kill()


def test_V1_any_node_answers_for_every_backend(nodes: list[NodeProcess]) -> None:
    async def main() -> None:
        with trio.fail_after(60):
            async with (
                qmux.connect(nodes[0].url, token=TOKEN) as via_first,
                qmux.connect(nodes[1].url, token=TOKEN) as via_second,
                qmux.connect(nodes[2].url, token=TOKEN) as via_third,
            ):
                assert sorted(handle.name for handle in via_first.backends()) == ["a", "b", "c"]
                opened = []
                for backend in "abc":  # two of three are another node's: forwarded
                    async with qmux.Session(service=via_first, backend=backend, max_time=600) as session:
                        job = await session.run("echo", backend)
                        assert await job.result() == backend
                        assert await (await via_second.job(job.job_id)).result() == backend
                        opened.append(session.session_id)
                listed = [session.session_id async for session in via_third.sessions()]
                assert sorted(listed) == sorted(opened)  # gathered from every node, newest first
                assert listed == opened[::-1]

    trio.run(main)


def test_J4_a_node_killed_under_load_loses_no_acknowledged_job(nodes: list[NodeProcess]) -> None:
    acked: dict[str, tuple[int, str]] = {}
    acked_after_takeover: list[str] = []
    killed_at: list[float] = []
    loaded, taken_over = trio.Event(), trio.Event()

    def progress() -> None:
        if len(acked) >= 150:
            loaded.set()
        if len(acked_after_takeover) >= 20:
            taken_over.set()

    async def client(c: int, stop: trio.Event) -> None:
        backend = "abc"[c % 3]
        order = [nodes[(c + k) % 3] for k in range(3)]  # its own node first, then the others
        n = c * 1_000_000
        while not stop.is_set():
            for node in order:
                if node.process is None or node.process.poll() is not None:
                    continue
                try:
                    async with qmux.connect(node.url, token=TOKEN, retries=1, timeout=10) as service:
                        while not stop.is_set():
                            n += 1
                            try:
                                job = await service.backend(backend).run("echo", n)
                            except BETWEEN_NODES:
                                if node.process.poll() is not None:
                                    break  # this node is gone: the next one
                                await trio.sleep(0.05)  # its backend is between nodes: not acknowledged
                                continue
                            acked[job.job_id] = (n, backend)
                            if killed_at and backend == "a":
                                acked_after_takeover.append(job.job_id)
                            progress()
                            with contextlib.suppress(qmux.QmuxError):  # paced by the backend, as agents are
                                await job.result()
                except (qmux.QmuxError, OSError):
                    await trio.sleep(0.05)  # this node is gone: the next one
            await trio.lowlevel.checkpoint()

    async def main() -> None:
        with trio.fail_after(90):
            stop = trio.Event()
            async with trio.open_nursery() as nursery:
                for c in range(9):
                    nursery.start_soon(client, c, stop)
                await loaded.wait()
                killed_at.append(time.monotonic())
                assert nodes[OWNER["a"]].kill() < 0  # SIGKILL: a crash under load
                await taken_over.wait()  # another node took a over and accepts again
                stop.set()
        outcomes: dict[str, str] = {}
        with trio.fail_after(60):
            async with (
                qmux.connect(nodes[1].url, token=TOKEN) as via_second,
                qmux.connect(nodes[2].url, token=TOKEN) as via_third,
            ):
                for job_id, (n, _) in acked.items():
                    job = await via_second.job(job_id)  # JobNotFoundError here: a job lost
                    try:
                        assert await job.result() == n
                        outcome = "DONE"
                    except qmux.JobFailedError as failed:
                        assert failed.reason == "interrupted_by_restart", failed
                        outcome = "ERROR"
                    assert await (await via_third.job(job_id)).status() == outcome  # one state, whoever asks
                    outcomes[job_id] = outcome
        assert set(outcomes) == set(acked)
        moved = [job_id for job_id, (_, backend) in acked.items() if backend == "a"]
        assert "DONE" in {outcomes[job_id] for job_id in moved}

    trio.run(main)


def test_J4_a_client_given_every_node_keeps_working_when_the_node_it_uses_is_killed(
    tmp_path: Path, postgres_url: str
) -> None:
    """``qmux.connect`` with the three nodes' URLs, talking to n1, which is SIGKILLed while a long
    poll and an event stream go through it: the poll returns and the stream resumes through n2
    (no event lost or repeated); the session on n2's backend goes on at once, and the session on
    n1's own backend once another node has taken it over, with no error in between (the 503s of
    the takeover are sent again)."""
    nodes = start_nodes(tmp_path, postgres_url, LAYOUT, lease=LEASE, job_seconds=1.0)
    seen: list[qmux.Event] = []
    results: dict[str, object] = {}

    async def main() -> None:
        with trio.fail_after(60):
            async with qmux.connect([node.url for node in nodes], token=TOKEN) as service:
                on_b = qmux.Session(service=service, backend="b", max_time=600)  # n2's: it lives on
                on_a = qmux.Session(service=service, backend="a", max_time=600)  # n1's: taken over
                assert await (await on_a.run("echo", "a0")).result() == "a0"

                async def follow(task_status: trio.TaskStatus[None]) -> None:
                    async with on_b.events() as events:
                        task_status.started()
                        seen.extend([event async for event in events])

                async def wait_for(job: qmux.Job) -> None:
                    results[job.job_id] = await job.result()

                async with trio.open_nursery() as nursery:
                    await nursery.start(follow)
                    polled = await on_b.run("echo", "during")  # a 1 s job: its long poll goes through n1
                    async with trio.open_nursery() as polling:
                        polling.start_soon(wait_for, polled)
                        await trio.sleep(0.3)
                        assert service.url == nodes[0].url
                        assert nodes[OWNER["a"]].kill() < 0  # SIGKILL the node the client uses
                        killed = time.monotonic()
                    assert results[polled.job_id] == "during"
                    assert service.url == nodes[1].url, "the next node in the order given"
                    after = await on_b.run("echo", "b after")
                    assert await after.result() == "b after"
                    moved = await on_a.run("echo", "a after")  # refused (503) until a is taken over: sent again
                    assert await moved.result() == "a after"
                    took = time.monotonic() - killed
                    assert took < 4 * LEASE + 2, f"the session on the killed node's backend waited {took:.2f}s"
                    await on_b.close()  # its event stream ends once its jobs have
                await on_a.close()
                ran = {job.job_id for job in (polled, after)}
                by_job: dict[str | None, list[str]] = {}
                for event in seen:
                    by_job.setdefault(event.job_id, []).append(event.kind)
                for job_id in ran:
                    assert by_job[job_id] == ["job.queued", "job.running", "job.done"], by_job
                assert [event.seq for event in seen] == sorted({event.seq for event in seen}), "each once, in order"
                assert seen[-1].kind == "session.closed"

    try:
        trio.run(main)
    finally:
        for node in nodes:
            node.kill()


def test_J4_a_node_stopped_gracefully_hands_its_backend_over_at_once(nodes: list[NodeProcess]) -> None:
    async def main() -> None:
        with trio.fail_after(60):
            # retries=0: this loop measures the hand-over, not the client's own pause (Retry-After: a lease)
            async with qmux.connect(nodes[0].url, token=TOKEN, retries=0) as service:
                session = qmux.Session(service=service, backend="b", max_time=600)
                first = await session.run("echo", "before")
                assert await first.result() == "before"
                assert await trio.to_thread.run_sync(nodes[OWNER["b"]].stop) == 0
                stopped = time.monotonic()
                while True:  # between nodes for a moment: 503, not acknowledged, tried again
                    try:
                        later = await session.run("echo", "after")  # the same session, on its new node
                        break
                    except BETWEEN_NODES:
                        await trio.sleep(0.05)
                took = time.monotonic() - stopped
                # released, not expired: an expiry would take a whole lease (it was renewed a third ago at most)
                assert took < 0.9 * LEASE, f"the hand-over took {took:.2f}s"
                assert await later.result() == "after"
                details = await session.details()
                assert details["state"] != "closed"
                await session.close()

    trio.run(main)


def test_J4_a_node_cut_off_from_the_database_stops_before_its_lease_can_be_taken(
    tmp_path: Path, postgres_url: str
) -> None:
    port = int(postgres_url.rsplit(":", 1)[1].split("/", 1)[0])
    relay = Relay(port)
    relay.start()
    through_relay = postgres_url.replace(f":{port}/", f":{relay.port}/")
    layout = {"n1": ["a"], "n2": ["b"]}
    nodes = start_nodes(tmp_path, postgres_url, layout, lease=LEASE, job_seconds=0.02, journal_of={"n1": through_relay})
    try:
        relay.cut()  # n1 can no longer reach the database; nothing tells it so
        cut = time.monotonic()
        status = nodes[0].wait(timeout=LEASE + 5)
        stopped = time.monotonic() - cut
        assert status == LEASE_LOST, f"n1 ended with {status}"
        assert stopped < 2 * LEASE + 1, f"n1 took {stopped:.2f}s to exit after the cut"
        # it had stopped (sealed its journal, cancelled its work) before its lease could be taken
        lost = _logged(nodes[0], "cluster.lease_lost")

        async def main() -> None:
            with trio.fail_after(30):
                async with qmux.connect(nodes[1].url, token=TOKEN) as service:
                    while True:  # between nodes until the lease expires: refused, then n2 takes a over
                        try:
                            job = await service.backend("a").run("echo", "after the partition")
                            break
                        except BETWEEN_NODES:
                            await trio.sleep(0.05)
                    assert await job.result() == "after the partition"

        trio.run(main)
        taken = _logged(nodes[1], "cluster.backend_taken", backend="a")
        assert lost["why"].startswith("this node could not renew it")
        assert dt.datetime.fromisoformat(lost["timestamp"]) < dt.datetime.fromisoformat(taken["timestamp"])
        assert taken["epoch"] == 2
    finally:
        for node in nodes:
            node.kill()
        relay.close()


def _logged(node: NodeProcess, event: str, **fields: object) -> dict[str, object]:
    """The first event of `node`'s JSON log with this name and these fields."""
    for line in node.log.read_text(encoding="utf-8").splitlines():
        if f'"{event}"' in line:
            entry = json.loads(line)
            if entry["event"] == event and all(entry.get(k) == v for k, v in fields.items()):
                return entry
    raise AssertionError(f"{node.name} logged no {event} {fields}")


def test_S2_the_ibm_client_runs_a_session_through_a_node_that_does_not_own_its_backend(
    tmp_path: Path, postgres_url: str
) -> None:
    """IBM's API in a cluster: the token the first node issues is valid on the owner (a key the
    nodes share), and the session's requests are forwarded there."""
    pytest.importorskip("qiskit_ibm_runtime")
    from qmux.ibm import client_environment

    from ..support.ibm import ClientProcess

    nodes = start_nodes(
        tmp_path, postgres_url, {"n1": ["a"], "n2": ["b"]}, lease=LEASE, job_seconds=0.02, ibm_compat=True
    )
    client = ClientProcess({**os.environ, **client_environment(nodes[0].url, TOKEN)}, tmp_path / "client.log")
    try:
        output = client.run(
            textwrap.dedent(
                """
                from qiskit import QuantumCircuit
                from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2, Session

                service = QiskitRuntimeService()
                print("backends:", sorted(backend.name for backend in service.backends()))
                bell = QuantumCircuit(2)
                bell.h(0)
                bell.cx(0, 1)
                bell.measure_all()
                with Session(backend=service.backend("b")) as session:  # b is n2's; the client talks to n1
                    job = SamplerV2(mode=session).run([bell], shots=100)
                    counts = job.result()[0].data.meas.get_counts()
                print("counts:", sorted(counts))
                print("job found again:", service.job(job.job_id()).status())
                """
            ),
            timeout=120,
        )
    finally:
        client.stop()
        for node in nodes:
            node.kill()
    assert "backends: ['a', 'b']" in output
    assert "counts: ['00', '11']" in output
    assert "job found again: DONE" in output


def test_V1_U1_the_ibm_client_pointed_at_one_node_lists_and_sums_the_jobs_of_every_node(
    tmp_path: Path, postgres_url: str
) -> None:
    """IBM's listing and usage in a cluster: jobs submitted through the first node run on each node's
    backend; ``service.jobs(limit=, skip=)`` and ``service.usage()`` through the third see them all,
    in the order they were submitted, as one node would show them."""
    pytest.importorskip("qiskit_ibm_runtime")
    from qmux.ibm import client_environment

    from ..support.ibm import ClientProcess

    nodes = start_nodes(tmp_path, postgres_url, LAYOUT, lease=LEASE, job_seconds=0.02, ibm_compat=True)
    via_third = client_environment(nodes[2].url, TOKEN)
    client = ClientProcess({**os.environ, **client_environment(nodes[0].url, TOKEN)}, tmp_path / "client.log")
    try:
        output = client.run(
            textwrap.dedent(
                f"""
                import json
                import os

                from qiskit import QuantumCircuit
                from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2

                service = QiskitRuntimeService()
                bell = QuantumCircuit(2)
                bell.h(0)
                bell.cx(0, 1)
                bell.measure_all()
                submitted = []
                for backend in "abcabc":  # through n1, to n1's, n2's and n3's backends
                    job = SamplerV2(mode=service.backend(backend)).run([bell], shots=10)
                    job.result()
                    submitted.append(job.job_id())
                usage_of_jobs = sum(service.job(job_id).usage() for job_id in submitted)

                os.environ.update(json.loads({json.dumps(via_third)!r}))
                third = QiskitRuntimeService()

                def ids(**query):
                    return [job.job_id() for job in third.jobs(**query)]

                print(json.dumps({{
                    "submitted": submitted,
                    "newest": ids(limit=6),
                    "page": ids(limit=2, skip=3),
                    "every": ids(limit=None),
                    "oldest": ids(limit=4, skip=1, descending=False),
                    "on_b": ids(backend_name="b"),
                    "past_the_end": ids(limit=5, skip=6),
                    "usage": third.usage()["usage_consumed_seconds"],
                    "usage_of_jobs": usage_of_jobs,
                }}))
                """
            ),
            timeout=180,
        )
    finally:
        client.stop()
        for node in nodes:
            node.kill()
    seen = json.loads(output.strip().splitlines()[-1])
    submitted = seen["submitted"]
    newest = submitted[::-1]
    assert seen["newest"] == newest, "every node's jobs, newest first, in the order submitted"
    assert seen["page"] == newest[3:5] and seen["every"] == newest
    assert seen["oldest"] == submitted[1:5]
    assert seen["on_b"] == [submitted[4], submitted[1]]
    assert seen["past_the_end"] == []
    assert seen["usage_of_jobs"] > 0 and seen["usage"] == pytest.approx(seen["usage_of_jobs"])
