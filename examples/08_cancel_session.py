"""Cancel a session: it closes at once, queued jobs fail, the running one completes."""

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
            await trio.sleep(0.1)  # job1 starts running; job2 waits behind it
            # You can use session.cancel() to fail all pending jobs, for example,
            # if you realize you made a mistake.
            await session.cancel()
            print("session:", await session.status())
        for name, job in (("job1", job1), ("job2", job2)):
            try:
                await job.result()
                print(f"{name}: {await job.status()}, ran to completion")
            except qmux.JobCancelledError as exc:
                print(f"{name}: {await job.status()}: {exc}")


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # prints only
    trio.run(main)
