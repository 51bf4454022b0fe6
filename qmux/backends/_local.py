"""Simulated devices that run in process: the embedded default backends.

A `LocalBackend` takes a configurable time per job, as a real device does, so that queueing,
ITTL and max_time are visible; then it runs the job's program:

- ``"sampler"`` and ``"estimator"`` simulate the job's circuits for real (see `_simulate`); a
  job that cannot run there (a malformed PUB, a circuit wider than the device) fails at once,
  before taking any device time, and fails alone (SPEC J3);
- custom `programs`, plain functions of the `JobRequest`, run after the device time;
  ``"echo"`` (returns the inputs) is always there for generic jobs.

The device time is a ``trio.sleep`` on Trio's clock, so that tests on a virtual clock stay
exact. The simulation runs inline when it is cheap (a few milliseconds) and on a worker thread
when it is not, so that it never holds up the event loop for long. Inline matters on a virtual
clock: while a thread computes, every task looks idle and an autojumping clock would leap
to the next deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import final

import trio
from attrs import define, field, validators

from .._core import (
    BackendConfig,
    InvalidInputError,
    JobRequest,
    identifier,
    non_negative_int,
    non_negative_seconds,
    positive_int,
)
from ..primitives._qiskit import require_qiskit
from ._device import DeviceConfig, device_config

__all__ = ["LocalBackend", "Program", "default_backends"]

#: a program runs one job: it gets the request and returns the job's result
Program = Callable[[JobRequest], object]

#: the programs every LocalBackend simulates with qiskit (in `_simulate` and `_executor`, imported only
#: when one runs); "executor" runs IBM's quantum programs and needs the ``ibm`` extra
SIMULATED_PROGRAMS = ("estimator", "executor", "sampler")


def _echo(request: JobRequest) -> object:
    return request.inputs


BUILTIN_PROGRAMS: Mapping[str, Program] = {"echo": _echo}


@final
@define(eq=False)
class LocalBackend:
    """A simulated device: it waits `job_seconds` per job, then runs the job's program."""

    name: str = field(validator=identifier)
    #: a `DeviceConfig` (from a TOML table) also says how its qubits are coupled (`qmux.backends._device`)
    config: BackendConfig = field(factory=DeviceConfig)
    #: how long each job occupies the device, in seconds (on Trio's clock)
    job_seconds: float = field(default=0.0, validator=non_negative_seconds)
    #: custom programs by id; one named "sampler" or "estimator" replaces the simulated one
    programs: Mapping[str, Program] = field(factory=lambda: dict(BUILTIN_PROGRAMS))
    #: seeds the simulation of every job that brings no seed of its own: same inputs, same results
    seed: int | None = field(default=None, validator=validators.optional(non_negative_int), kw_only=True)
    #: the widest circuit the statevector simulation takes (2**n amplitudes), whatever `num_qubits` says
    max_simulated_qubits: int = field(default=20, validator=positive_int, kw_only=True)
    #: simulations estimated to take longer than this (seconds of CPU) run on a worker thread
    inline_seconds: float = field(default=0.02, validator=non_negative_seconds, kw_only=True)

    async def execute(self, request: JobRequest) -> object:
        program = self.programs.get(request.program_id)
        if program is not None:
            await self._occupy()
            return program(request)
        if request.program_id not in SIMULATED_PROGRAMS:
            offered = sorted({*self.programs, *SIMULATED_PROGRAMS})
            raise InvalidInputError(
                f"backend {self.name!r} has no program {request.program_id!r}; it runs: {', '.join(offered)}"
            )
        require_qiskit(f"the {request.program_id!r} program of backend {self.name!r}")
        from ._simulate import Device, prepare

        config = device_config(self.config)
        pairs = None if config.is_full else frozenset(config.pairs())
        device = Device(self.name, config.num_qubits, self.max_simulated_qubits, self.seed, pairs, config.coupling_map)
        if request.program_id == "executor":
            from ._executor import prepare_program

            simulation = prepare_program(request.inputs, device)
        else:
            simulation = prepare(request.program_id, request.inputs, device)
        await self._occupy()
        if simulation.estimated_seconds <= self.inline_seconds:
            return simulation.run()
        # abandon_on_cancel: a cancelled job (SPEC J2) ends now; the thread's result is dropped
        return await trio.to_thread.run_sync(simulation.run, abandon_on_cancel=True)

    async def _occupy(self) -> None:
        """The device time of one job."""
        if self.job_seconds:
            await trio.sleep(self.job_seconds)


def default_backends() -> list[LocalBackend]:
    """The devices a newcomer gets with no configuration: three QPUs and a simulator.

    Named and shaped like IBM devices (127-qubit Eagles, a 133-qubit Heron) with IBM's 8-hour
    max_ttl, a short ITTL so that deactivation shows in a demo, and about half a second per job.
    Their simulations are unseeded; seed a run with ``Sampler(seed=...)`` or describe seeded
    backends in a TOML file (`load_backends`).
    """

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
