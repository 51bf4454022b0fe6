"""A qmux process that works until it is killed: for the SIGKILL test of the journal.

Usage: python -m tests.support.journal_worker JOURNAL. It prints ``ACK <job_id>`` for every job the
service acknowledged (so, by the journal's promise, one that is on disk), then keeps going.
"""

from __future__ import annotations

import logging
import sys

import structlog
import trio

import qmux
from qmux.backends import LocalBackend

BACKENDS = [
    LocalBackend("a", qmux.BackendConfig(interactive_ttl=0.05), job_seconds=0.02),
    LocalBackend("b", qmux.BackendConfig(interactive_ttl=0.05), job_seconds=0.02),
]


async def main(journal: str) -> None:
    async with qmux.open_service(BACKENDS, journal=journal) as service:
        sessions = [qmux.Session(service=service, backend=name) for name in ("a", "b", "a")]
        for n in range(10_000):
            if n % 4 == 3:
                job = await service.backend("b").run("echo", {"n": n})
            else:
                job = await sessions[n % 3].run("echo", {"n": n})
            print("ACK", job.job_id, n, flush=True)
            if n % 5 == 0:
                await job.result()
                print("DONE", job.job_id, flush=True)


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    trio.run(main, sys.argv[1])
