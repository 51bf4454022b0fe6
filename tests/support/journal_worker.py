"""A qmux process that works until it is killed: for the SIGKILL test of the journal.

Usage: python -m tests.support.journal_worker JOURNAL. It prints ``ACK <job_id>`` for every job the
service acknowledged (so, by the journal's promise, one that is on disk), then keeps going.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence

import structlog
import trio

import qmux
from qmux.backends import LocalBackend

BACKENDS = [
    LocalBackend("a", qmux.BackendConfig(interactive_ttl=0.05), job_seconds=0.02),
    LocalBackend("b", qmux.BackendConfig(interactive_ttl=0.05), job_seconds=0.02),
]


def outcomes_after_restart(journal: str, backends: Sequence[qmux.Backend], acked: Mapping[str, int]) -> dict[str, str]:
    """Restart a service on `journal` and find every acknowledged job (``{"n": n}`` inputs) by id.

    Each must come back ``done`` with its result, or failed as ``interrupted_by_restart`` (SPEC
    J4); a `JobNotFoundError` is a lost job and fails the caller's test.
    """
    outcomes: dict[str, str] = {}

    async def restart() -> None:
        with trio.fail_after(60):
            async with qmux.open_service(backends, journal=journal) as service:
                for job_id, n in acked.items():
                    job = await service.job(job_id)
                    try:
                        assert await job.result() == {"n": n}
                        outcomes[job_id] = "done"
                    except qmux.JobFailedError as exc:
                        assert exc.reason == "interrupted_by_restart", exc
                        outcomes[job_id] = exc.reason

    trio.run(restart)
    return outcomes


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
