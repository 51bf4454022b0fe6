"""Sampler and estimator jobs run for real, on qiskit's reference primitives.

`prepare` does everything that can fail fast, on the Trio thread and before any device time:
read the inputs through the same PUB checks the client used, and check every circuit fits
the device and the simulation. It returns a `Simulation`: the CPU-heavy part, to run inline
when it is cheap and on a worker thread when it is not (the caller decides, from `work`).

Why qiskit's `StatevectorSampler` / `StatevectorEstimator` rather than qiskit-aer: they ship
with qiskit itself (the ``qiskit`` extra is all a user installs, no compiled wheel to match),
they are qiskit's definition of the V2 primitives' semantics (PUB broadcasting, result
containers, metadata), and the circuits of a session walkthrough are small. Their limit is
the statevector: 2**n amplitudes, so a backend simulates at most `max_simulated_qubits` even
when it claims more qubits, and says so per job. Two adjustments, both documented on the
functions: the estimator reports ``stds`` equal to the precision its noise was drawn with (the
reference leaves them 0), and final measurements are stripped from estimator circuits.

This module imports qiskit: import it only after `require_qiskit` has passed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
from attrs import frozen
from qiskit.circuit import QuantumCircuit
from qiskit.exceptions import QiskitError
from qiskit.primitives import (
    DataBin,
    PrimitiveResult,
    PubResult,
    StatevectorEstimator,
    StatevectorSampler,
)
from qiskit.primitives.containers.estimator_pub import EstimatorPub

from .._core import InvalidInputError
from ..primitives._pubs import read_estimator_inputs, read_sampler_inputs

__all__ = ["DEFAULT_PRECISION", "DEFAULT_SHOTS", "Device", "Simulation", "prepare"]

#: shots of a PUB when neither it nor its job names any: IBM's server default
DEFAULT_SHOTS = 4096
#: precision of an estimate when neither its PUB nor its job names any: IBM's default (1/sqrt(4096))
DEFAULT_PRECISION = 0.015625


@frozen
class Device:
    """What a simulation must know of the device it stands in for."""

    name: str
    num_qubits: int
    max_simulated_qubits: int
    #: seeds every job that brings no seed of its own; ``None``: fresh randomness
    seed: int | None


@frozen
class Simulation:
    """A checked job, ready to simulate: `run` is the CPU-heavy part."""

    #: a rough estimate of the CPU time `run` takes (see `_cost`), to decide inline versus thread
    estimated_seconds: float
    run: Callable[[], PrimitiveResult]


def prepare(program_id: str, inputs: object, device: Device) -> Simulation:
    """Check a ``"sampler"`` or ``"estimator"`` job for `device`; raise `InvalidInputError` if it cannot run."""
    if program_id == "sampler":
        sampler_inputs = read_sampler_inputs(inputs, default_shots=DEFAULT_SHOTS)
        seed = _seed(sampler_inputs.seed, device)
        cost = 0.0
        for index, pub in enumerate(sampler_inputs.pubs):
            _check_width(pub.circuit, f"sampler pub {index}", device)
            cost += _cost(
                pub.shape, per_circuit=_PER_AMPLITUDE_SAMPLED * 2**pub.circuit.num_qubits + _PER_SHOT * pub.shots
            )
        pubs = sampler_inputs.pubs
        return Simulation(cost, lambda: _sample(list(pubs), seed))
    if program_id == "estimator":
        estimator_inputs = read_estimator_inputs(inputs, default_precision=DEFAULT_PRECISION)
        seed = _seed(estimator_inputs.seed, device)
        cost = 0.0
        for index, epub in enumerate(estimator_inputs.pubs):
            _check_width(epub.circuit, f"estimator pub {index}", device)
            cost += _cost(epub.shape, per_circuit=_PER_AMPLITUDE_EVOLVED * 2**epub.circuit.num_qubits)
        epubs = estimator_inputs.pubs
        return Simulation(cost, lambda: _estimate(list(epubs), seed))
    raise InvalidInputError(f"no simulated program {program_id!r}; there are: estimator, sampler")


# Seconds per unit, measured on qiskit 2.6's reference primitives (a laptop-class CPU, 2026):
# about 1 ms per bound circuit, 2 us per shot drawn, 5 us per amplitude sampled from and
# 0.2 us per amplitude evolved for an expectation value. Only the order of magnitude matters.
_PER_BOUND_CIRCUIT = 1e-3
_PER_SHOT = 2e-6
_PER_AMPLITUDE_SAMPLED = 5e-6
_PER_AMPLITUDE_EVOLVED = 2e-7


def _cost(shape: tuple[int, ...], *, per_circuit: float) -> float:
    """Estimated seconds to simulate a PUB: its bound circuits times the cost of each."""
    return int(np.prod(shape, dtype=int)) * (_PER_BOUND_CIRCUIT + per_circuit)


def _seed(job_seed: int | None, device: Device) -> int | None:
    return device.seed if job_seed is None else job_seed


def _check_width(circuit: QuantumCircuit, where: str, device: Device) -> None:
    """A circuit wider than the device, or than what it can simulate, fails its job (and only it)."""
    width = circuit.num_qubits
    if width > device.num_qubits:
        raise InvalidInputError(
            f"{where}: its circuit has {width} qubits but backend {device.name!r} has {device.num_qubits}; "
            f"use a circuit of at most {device.num_qubits} qubits or a larger backend"
        )
    if width > device.max_simulated_qubits:
        raise InvalidInputError(
            f"{where}: its circuit has {width} qubits; backend {device.name!r} simulates a statevector "
            f"of at most {device.max_simulated_qubits} qubits"
        )


def _sample(pubs: list[Any], seed: int | None) -> PrimitiveResult:
    """Qiskit's reference sampler, as is; its errors (mid-circuit measurement, ...) fail the job."""
    try:
        return cast(PrimitiveResult, StatevectorSampler(default_shots=DEFAULT_SHOTS, seed=seed).run(pubs).result())
    except QiskitError as exc:
        raise InvalidInputError(f"the simulated sampler cannot run this job: {exc}") from exc


def _estimate(pubs: list[EstimatorPub], seed: int | None) -> PrimitiveResult:
    """Qiskit's reference estimator, with two adjustments for a stand-in of a QPU.

    - Final measurements are stripped first: they do not change an expectation value, users
      often leave them in, and the statevector cannot apply them.
    - ``stds`` is the precision: the reference draws each value from a normal distribution of
      that width around the exact one but reports 0, which would claim an exactness it lacks.
    """
    stripped = [
        EstimatorPub(
            pub.circuit.remove_final_measurements(inplace=False),
            pub.observables,
            pub.parameter_values,
            pub.precision,
            validate=False,
        )
        for pub in pubs
    ]
    try:
        result = StatevectorEstimator(default_precision=DEFAULT_PRECISION, seed=seed).run(stripped).result()
    except QiskitError as exc:
        raise InvalidInputError(f"the simulated estimator cannot run this job: {exc}") from exc
    pub_results = []
    for pub, pub_result in zip(stripped, result, strict=True):
        evs = pub_result.data.evs
        stds = np.full_like(evs, pub.precision, dtype=np.float64)
        pub_results.append(PubResult(DataBin(evs=evs, stds=stds, shape=evs.shape), metadata=pub_result.metadata))
    return PrimitiveResult(pub_results, metadata=result.metadata)
