"""Invoke multiple primitives in a session: a sampler and an estimator, one after the other."""

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
    sampler_circuit = circuit.copy()
    sampler_circuit.measure_all()
    observable = SparsePauliOp("ZZ")

    async with qmux.open_service() as service:
        backend = service.least_busy(operational=True, simulator=False)
        async with qmux.Session(backend=backend):
            sampler = qmux.Sampler()
            estimator = qmux.Estimator()

            job = await sampler.run([(sampler_circuit,)])
            result = await job.result()
            print(f" > Counts: {result[0].data.meas.get_counts()}")

            job = await estimator.run([(circuit, observable)])
            result = await job.result()
            print(f" > Expectation value: {result[0].data.evs}")
            print(f" > Metadata: {result[0].metadata}")


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # prints only
    trio.run(main)
