"""An agent that restarts: it finds its session again and follows it to the end (SPEC V1, E1, U1, T1).

The service lives apart from the agent (here ``qmux serve`` in this process, on a free port, so
that the example runs on its own). In its first life the agent opens a session, submits tagged
jobs and dies without closing anything: the session lives on the server. In its second life it
connects anew, lists its sessions, takes the one still open, closes it (its queued jobs still
run, S12) and follows it with ``events()`` until it has ended, then finds its jobs by tag.
"""

import functools
import logging

import structlog
import trio

import qmux
from qmux.backends import LocalBackend
from qmux.server import ServerConfig, ServerSettings, Tenant, serve

TOKEN = "the-agents-token"


async def first_life(url: str) -> str:
    async with qmux.connect(url, token=TOKEN) as service:
        session = qmux.Session(service=service, backend="fake_quick")
        for step in range(3):
            await session.run("echo", {"step": step}, tags=["agent-7", f"step-{step}"])
        print("first life: 3 jobs queued in a session; then the agent crashed")
        return session.session_id  # only to check the second life below; the agent itself forgets it


async def second_life(url: str, lost: str) -> None:
    async with qmux.connect(url, token=TOKEN) as service:
        still_open = [session async for session in service.sessions() if await session.status() != "Closed"]
        session = still_open[0]
        print("second life: found it again:", session.session_id == lost, "-", await session.status())
        async with session.events() as events:  # the server listens once this block begins
            await session.close()
            async for event in events:  # its state now, every change, until it ended
                reason = event.data.get("reason", "")
                print(f"  {event.kind:<16} {event.job_id or '':<20} {reason}")
        jobs = [job async for job in service.jobs(tags=["agent-7"])]
        print("jobs tagged agent-7:", len(jobs), [await job.status() for job in jobs])
        usage = await service.usage()
        print("usage: jobs", usage["fake_quick"]["jobs"], "seconds", round(usage["fake_quick"]["quantum_seconds"], 1))


async def main() -> None:
    backend = LocalBackend("fake_quick", qmux.BackendConfig(num_qubits=5), job_seconds=0.3)
    config = ServerConfig(
        tenants=(Tenant.from_token("agent", TOKEN),), server=ServerSettings(port=0), backends=(backend,)
    )
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(functools.partial(serve, config, shutdown_trigger=stop.wait))
        lost = await first_life(url)
        await second_life(url, lost)
        stop.set()


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # prints only
    trio.run(main)
