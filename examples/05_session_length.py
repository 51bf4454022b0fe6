"""Session length: max_time bounds a session; the ITTL is the backend's and cannot be set.

A session whose max_time runs out is closed at once: the job running then completes and keeps
its result, queued jobs fail.
"""

import logging

import structlog
import trio

import qmux


async def main() -> None:
    async with qmux.open_service() as service:
        backend = service.backend("fake_torino")
        async with qmux.Session(service=service, backend=backend, max_time="25m") as session:
            details = await session.details()
            print(f"max_time: {details['max_time']:g}s, ITTL: {details['interactive_timeout']:g}s (the backend's)")

        try:
            qmux.Session(backend=backend, max_time="9h")
        except qmux.InvalidInputError as exc:
            print("too long:", exc)

        # fake_torino takes 0.4 s per job: the third job is running when 1 s has passed.
        session = qmux.Session(backend=backend, max_time=1.0)
        jobs = [await session.run("echo", {"n": n}) for n in range(4)]
        for n, job in enumerate(jobs):
            try:
                await job.result()
                print(f"job {n}: done")
            except qmux.JobFailedError as exc:
                print(f"job {n}: failed ({exc.reason})")
        print("session:", await session.status())


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # prints only
    trio.run(main)
