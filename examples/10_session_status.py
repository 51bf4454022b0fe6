"""Check session status: Pending, In progress (accepting or not), Closed.

A backend with a one-second ITTL shows deactivation without a long wait: an idle session goes
back to Pending, and its next job makes it active again.
"""

import logging

import structlog
import trio

import qmux
from qmux.backends import LocalBackend


async def main() -> None:
    quick = LocalBackend("fake_quick", qmux.BackendConfig(num_qubits=5, interactive_ttl=1.0), job_seconds=0.2)
    async with qmux.open_service([quick]) as service:
        session = qmux.Session(service=service, backend="fake_quick")
        print("opened:", await session.status())
        await (await session.run("echo", {})).result()
        print("after a job:", await session.status())
        await trio.sleep(1.5)
        print("idle past the ITTL:", await session.status())
        jobs = [await session.run("echo", {}) for _ in range(2)]
        await trio.sleep(0.1)
        await session.close()
        print("closed with a job queued:", await session.status())
        for job in jobs:
            await job.result()
        print("after its last job:", await session.status())


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # prints only
    trio.run(main)
