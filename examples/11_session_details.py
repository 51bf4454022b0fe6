"""Determine session details: the same keys as qiskit-ibm-runtime's Session.details()."""

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
        async with qmux.Session(service=service, backend=backend) as session:
            estimator = qmux.Estimator()
            job = await estimator.run([(circuit, SparsePauliOp("ZZ"))])
            await job.result()
            for key, value in (await session.details()).items():
                print(f"{key}: {value}")


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # prints only
    trio.run(main)
