"""Open a session with the Session class, and close it by hand.

The session starts when its first job begins execution: until then its status is Pending.
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
        backend = service.least_busy(operational=True, simulator=False)
        session = qmux.Session(service=service, backend=backend)
        estimator = qmux.Estimator(mode=session)
        sampler = qmux.Sampler(mode=session)
        print("before the first job:", await session.status())

        job = await sampler.run([(bell,)], shots=1024)
        result = await job.result()
        print("counts:", result[0].data.meas.get_counts())
        print("after it:", await session.status())
        print("estimator ready on the same session:", estimator.mode is session)

        await session.close()
        print("after close():", await session.status())


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # prints only
    trio.run(main)
