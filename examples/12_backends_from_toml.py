"""Your own set of backends, described in a TOML file (see backends.toml next to this script)."""

import logging
from pathlib import Path

import structlog
import trio
from qiskit import QuantumCircuit

import qmux
from qmux.backends import load_backends


async def main() -> None:
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    bell.measure_all()

    backends = load_backends(Path(__file__).with_name("backends.toml"))
    async with qmux.open_service(backends) as service:
        for backend in service.backends():
            print(f"{backend.name}: {backend.num_qubits} qubits, simulator={backend.simulator}")
        async with qmux.Session(service=service, backend="lab_qpu") as session:
            sampler = qmux.Sampler()
            first = (await (await sampler.run([(bell,)], shots=200)).result())[0].data.meas.get_counts()
            again = (await (await sampler.run([(bell,)], shots=200)).result())[0].data.meas.get_counts()
            print("counts:", first, "- reproducible under the backend's seed:", first == again)
            wide = QuantumCircuit(6)
            wide.measure_all()
            job = await sampler.run([(wide,)])
            try:
                await job.result()
            except qmux.JobFailedError as exc:
                print("too wide, that job alone failed:", exc.__cause__)
            print("session still:", await session.status())


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # prints only
    trio.run(main)
