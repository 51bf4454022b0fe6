"""Set up to use sessions: start a service and see its backends.

IBM: ``service = QiskitRuntimeService()``. qmux: ``async with qmux.open_service() as service``
runs the embedded simulated devices in this process for the duration of the block.
"""

import logging

import structlog
import trio

import qmux


async def main() -> None:
    async with qmux.open_service() as service:
        for backend in service.backends():
            kind = "simulator" if backend.simulator else "QPU"
            print(f"{backend.name}: {backend.num_qubits} qubits, {kind}, pending jobs: {backend.pending_jobs}")
        print("least busy QPU:", service.least_busy(operational=True, simulator=False).name)


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # prints only
    trio.run(main)
