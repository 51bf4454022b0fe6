"""Simulated devices that run in process: the embedded default backends.

A `LocalBackend` takes a configurable time per job, as a real device does, so that queueing,
ITTL and max_time are visible; then it runs the job's program. Programs are plain functions of
the `JobRequest`; ``"echo"`` (returns the inputs) is always there for generic jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import final

import trio
from attrs import define, field, validators

from .._backend import BackendConfig, JobRequest
from .._errors import InvalidInputError

__all__ = ["LocalBackend", "Program", "default_backends"]

#: a program runs one job: it gets the request and returns the job's result
Program = Callable[[JobRequest], object]


def _echo(request: JobRequest) -> object:
    return request.inputs


BUILTIN_PROGRAMS: Mapping[str, Program] = {"echo": _echo}


@final
@define(eq=False)
class LocalBackend:
    """A simulated device: it waits `job_seconds` per job, then runs the job's program."""

    name: str = field(validator=validators.instance_of(str))
    config: BackendConfig = field(factory=BackendConfig)
    #: how long each job occupies the device, in seconds (on Trio's clock)
    job_seconds: float = field(default=0.0, validator=[validators.instance_of((int, float)), validators.ge(0)])
    programs: Mapping[str, Program] = field(factory=lambda: dict(BUILTIN_PROGRAMS))

    async def execute(self, request: JobRequest) -> object:
        program = self.programs.get(request.program_id)
        if program is None:
            raise InvalidInputError(
                f"backend {self.name!r} has no program {request.program_id!r}; "
                f"it runs: {', '.join(sorted(self.programs))}"
            )
        if self.job_seconds:
            await trio.sleep(self.job_seconds)
        return program(request)


def default_backends() -> list[LocalBackend]:
    """The devices a newcomer gets with no configuration: three QPUs and a simulator."""

    def qpu(num_qubits: int) -> BackendConfig:
        return BackendConfig(num_qubits=num_qubits, max_ttl=8 * 3600.0, interactive_ttl=5.0, concurrency=1)

    return [
        LocalBackend("fake_sherbrooke", qpu(127), job_seconds=0.5),
        LocalBackend("fake_kyiv", qpu(127), job_seconds=0.5),
        LocalBackend("fake_torino", qpu(133), job_seconds=0.4),
        LocalBackend(
            "local_simulator",
            BackendConfig(num_qubits=32, simulator=True, max_ttl=8 * 3600.0, interactive_ttl=5.0, concurrency=4),
            job_seconds=0.05,
        ),
    ]
