"""Close a session: leaving the block, or close() by hand. Submitted jobs still run to completion."""

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
    observable = SparsePauliOp("ZZ")

    async with qmux.open_service() as service:
        backend = service.least_busy(operational=True, simulator=False)
        async with qmux.Session(backend=backend) as session:
            estimator = qmux.Estimator()
            job1 = await estimator.run([(circuit, observable)])
            job2 = await estimator.run([(circuit, observable)])
        # The session is no longer accepting jobs but the submitted jobs will run to completion.
        print("after the block:", await session.status())
        result = await job1.result()
        result2 = await job2.result()
        print("results:", result[0].data.evs, result2[0].data.evs)
        print("once they finished:", await session.status())

        session = qmux.Session(backend=backend)
        estimator = qmux.Estimator(mode=session)
        job1 = await estimator.run([(circuit, observable)])
        job2 = await estimator.run([(circuit, observable)])
        print(f"Result1: {(await job1.result())[0].data.evs}")
        print(f"Result2: {(await job2.result())[0].data.evs}")
        # Manually close the session. Running and queued jobs will run to completion.
        await session.close()
        print("after close():", await session.status())


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # prints only
    trio.run(main)
