"""Specify the system of a session by its name, or pass a backend object."""

import logging

import structlog
import trio

import qmux


async def main() -> None:
    async with qmux.open_service() as service:
        async with qmux.Session(service=service, backend="fake_sherbrooke") as session:
            print("by name:", session.backend_name)

        backend = service.least_busy(operational=True, simulator=False)
        async with qmux.Session(backend=backend) as session:
            print("by object:", session.backend_name)

        try:
            qmux.Session(service=service, backend="ibm_nowhere")
        except qmux.BackendNotFoundError as exc:
            print("unknown name refused:", exc)


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # prints only
    trio.run(main)
