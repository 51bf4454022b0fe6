"""Open a session with the context manager: primitives made inside pick the session up.

Leaving the block closes the session (it stops accepting jobs; submitted ones still finish).
"""

import logging

import structlog
import trio
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

import qmux


async def main() -> None:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)

    async with qmux.open_service() as service:
        backend = service.least_busy(operational=True, simulator=False)
        async with qmux.Session(backend=backend) as session:
            estimator = qmux.Estimator()  # no mode=: the session of the `async with`
            sampler = qmux.Sampler()
            print("both in the session:", estimator.mode is session and sampler.mode is session)
            job = await estimator.run([(circuit, SparsePauliOp("ZZ"))])
            result = await job.result()
            print("<ZZ> =", result[0].data.evs)
        print("after the block:", await session.status())


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # prints only
    trio.run(main)
