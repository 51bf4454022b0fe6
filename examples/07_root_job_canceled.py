"""When the root job is canceled: the session closes and fails its other queued jobs.

The root job is the session's first job; its id is the session id.
"""

import logging

import structlog
import trio
from qiskit import QuantumCircuit

import qmux


async def main() -> None:
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    bell.measure_all()

    async with qmux.open_service() as service:
        session = qmux.Session(service=service, backend="fake_kyiv")
        sampler = qmux.Sampler(mode=session)
        jobs = [await sampler.run([(bell,)]) for _ in range(3)]
        print("root job is the session id:", jobs[0].job_id == session.session_id)
        await jobs[0].cancel()
        for n, job in enumerate(jobs):
            try:
                await job.result()
            except qmux.JobError as exc:
                print(f"job {n}: {await job.status()}: {exc}")
        print("session:", await session.status())
        try:
            await sampler.run([(bell,)])
        except qmux.SessionClosedError as exc:
            print("later submission refused, reason:", exc.reason.value)


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # prints only
    trio.run(main)
