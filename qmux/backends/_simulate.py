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

A device's coupling map is honoured as the device would: a gate on two qubits that are not
coupled, or on more than two, fails the job before any device time (`check_couplings`). A
circuit transpiled for the device is as wide as the device; the qubits it never touches are
left out of the simulation (they stay in |0>, which an estimator's observables account for),
so that only the qubits in use count against `max_simulated_qubits`.

This module imports qiskit: import it only after `require_qiskit` has passed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, cast

import numpy as np
from attrs import frozen
from qiskit.circuit import QuantumCircuit
from qiskit.converters import circuit_to_dag, dag_to_circuit
from qiskit.exceptions import QiskitError
from qiskit.primitives import (
    DataBin,
    PrimitiveResult,
    PubResult,
    StatevectorEstimator,
    StatevectorSampler,
)
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.observables_array import ObservablesArray
from qiskit.primitives.containers.sampler_pub import SamplerPub

from .._core import InvalidInputError
from ..primitives._pubs import read_estimator_inputs, read_sampler_inputs

__all__ = [
    "DEFAULT_PRECISION",
    "DEFAULT_SHOTS",
    "Device",
    "Simulation",
    "check_couplings",
    "check_width",
    "prepare",
    "without_idle_qubits",
]

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
    #: the coupled pairs (both directions); ``None``: any pair of qubits is coupled
    pairs: frozenset[tuple[int, int]] | None = None
    #: how the coupling map is called in errors ("heavy_hex", ...)
    coupling_map: str = "full"


@frozen
class Simulation:
    """A checked job, ready to simulate: `run` is the CPU-heavy part."""

    #: a rough estimate of the CPU time `run` takes (see `_cost`), to decide inline versus thread
    estimated_seconds: float
    run: Callable[[], object]


def prepare(program_id: str, inputs: object, device: Device) -> Simulation:
    """Check a ``"sampler"`` or ``"estimator"`` job for `device`; raise `InvalidInputError` if it cannot run."""
    if program_id == "sampler":
        sampler_inputs = read_sampler_inputs(inputs, default_shots=DEFAULT_SHOTS)
        seed = _seed(sampler_inputs.seed, device)
        cost = 0.0
        pubs: list[SamplerPub] = []
        for index, pub in enumerate(sampler_inputs.pubs):
            circuit = check_circuit(pub.circuit, f"sampler pub {index}", device)
            pubs.append(SamplerPub(circuit, pub.parameter_values, pub.shots, validate=False))
            cost += _cost(pub.shape, per_circuit=_PER_AMPLITUDE_SAMPLED * 2**circuit.num_qubits + _PER_SHOT * pub.shots)
        return Simulation(cost, lambda: _sample(pubs, seed))
    if program_id == "estimator":
        estimator_inputs = read_estimator_inputs(inputs, default_precision=DEFAULT_PRECISION)
        seed = _seed(estimator_inputs.seed, device)
        cost = 0.0
        epubs: list[_InUse] = []
        for index, epub in enumerate(estimator_inputs.pubs):
            where = f"estimator pub {index}"
            check_width(epub.circuit, where, device)
            check_couplings(epub.circuit, where, device)
            stripped = _estimator_pub_in_use(epub)
            check_width(stripped.pub.circuit, where, device, in_use=True)
            epubs.append(stripped)
            cost += _cost(epub.shape, per_circuit=_PER_AMPLITUDE_EVOLVED * 2**stripped.pub.circuit.num_qubits)
        shots = [_estimator_shots(inputs, in_use.pub.precision) for in_use in epubs]
        return Simulation(cost, lambda: _estimate(epubs, seed, shots))
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


def check_circuit(circuit: QuantumCircuit, where: str, device: Device) -> QuantumCircuit:
    """`circuit` checked for `device` (width, couplings), as the simulation runs it: without its idle qubits."""
    check_width(circuit, where, device)
    check_couplings(circuit, where, device)
    in_use = without_idle_qubits(circuit)
    check_width(in_use, where, device, in_use=True)
    return in_use


def check_width(circuit: QuantumCircuit, where: str, device: Device, *, in_use: bool = False) -> None:
    """A circuit wider than the device fails its job (and only it); so does one whose qubits `in_use`
    (the circuit without its idle qubits) are more than the device can simulate."""
    width = circuit.num_qubits
    if width > device.num_qubits:
        raise InvalidInputError(
            f"{where}: its circuit has {width} qubits but backend {device.name!r} has {device.num_qubits}; "
            f"use a circuit of at most {device.num_qubits} qubits or a larger backend"
        )
    if in_use and width > device.max_simulated_qubits:
        raise InvalidInputError(
            f"{where}: its circuit acts on {width} qubits; backend {device.name!r} simulates a statevector "
            f"of at most {device.max_simulated_qubits} qubits"
        )


#: instructions that act on several qubits without coupling them
_DIRECTIVES = frozenset({"barrier", "snapshot", "delay"})


def check_couplings(circuit: QuantumCircuit, where: str, device: Device) -> None:
    """Every gate on several qubits must join coupled qubits, as on the device; else the job fails.

    Control flow is checked inside its blocks. Barriers and delays couple nothing.
    """
    if device.pairs is None:
        return
    _check_block(circuit, [circuit.find_bit(q).index for q in circuit.qubits], where, device, device.pairs)


def _check_block(
    block: QuantumCircuit, physical: list[int], where: str, device: Device, pairs: frozenset[tuple[int, int]]
) -> None:
    index = {qubit: physical[i] for i, qubit in enumerate(block.qubits)}
    for instruction in block.data:
        operation = instruction.operation
        qubits = [index[q] for q in instruction.qubits]
        blocks: tuple[QuantumCircuit, ...] = tuple(getattr(operation, "blocks", ()))
        for inner in blocks:
            _check_block(inner, qubits, where, device, pairs)
        if len(qubits) < 2 or operation.name in _DIRECTIVES or blocks:
            continue
        if len(qubits) > 2:
            raise InvalidInputError(
                f"{where}: its circuit applies {operation.name} to {len(qubits)} qubits {tuple(qubits)}; backend "
                f"{device.name!r} runs gates on one or two coupled qubits; {_TRANSPILE}"
            )
        if (qubits[0], qubits[1]) not in pairs:
            raise InvalidInputError(
                f"{where}: its circuit applies {operation.name} to qubits {tuple(qubits)}, which are not coupled on "
                f"backend {device.name!r} (its {device.coupling_map} coupling map); {_TRANSPILE}"
            )


_TRANSPILE = (
    "transpile the circuit for the backend first, e.g. "
    "generate_preset_pass_manager(backend=backend, optimization_level=1).run(circuit)"
)


def without_idle_qubits(circuit: QuantumCircuit) -> QuantumCircuit:
    """`circuit` without the qubits no instruction touches (they stay in |0>); itself if it has none."""
    idle = _idle_qubits(circuit)
    if not idle:
        return circuit
    dag = circuit_to_dag(circuit)
    dag.remove_qubits(*idle)
    return cast(QuantumCircuit, dag_to_circuit(dag, copy_operations=False))


def _idle_qubits(circuit: QuantumCircuit) -> list[Any]:
    used = {qubit for instruction in circuit.data for qubit in instruction.qubits}
    return [qubit for qubit in circuit.qubits if qubit not in used]


#: the expectation value, in |0>, of each single-qubit factor of an observable's label
_ON_ZERO: Mapping[str, float] = {"I": 1.0, "Z": 1.0, "0": 1.0, "1": 0.0, "X": 0.0, "Y": 0.0}
_ON_ZERO_HALF = 0.5  # "+", "-", "r", "l": projectors onto X and Y eigenstates


@frozen
class _InUse:
    """An estimator PUB reduced to the qubits in use, and what to add to its values to undo the reduction."""

    pub: EstimatorPub
    #: per observable (the observables' shape): 0, or -1 where the observable vanished on the idle qubits
    offsets: np.ndarray[Any, Any] | None = None


def _estimator_pub_in_use(pub: EstimatorPub) -> _InUse:
    """`pub` with final measurements and idle qubits removed, its observables reduced to the qubits in use.

    An idle qubit is in |0>: each term's factor on it is replaced by its value there (1 for I
    and Z, 0 for X and Y, ...), so that the expectation values are those of the whole circuit.
    An observable with nothing left (X on an idle qubit: its value is exactly 0) cannot be
    given to qiskit's estimator, which refuses a zero observable: the identity is estimated in
    its place, with the same noise, and 1 taken off its value (`_InUse.offsets`), so that the
    job reports 0 within its precision, as a device would.
    """
    circuit = pub.circuit.remove_final_measurements(inplace=False)
    idle = _idle_qubits(circuit)
    if not idle:
        return _InUse(EstimatorPub(circuit, pub.observables, pub.parameter_values, pub.precision, validate=False))
    drop = {circuit.find_bit(q).index for q in idle}
    width = circuit.num_qubits
    keep = [position for position in range(width) if position not in drop]
    identity = "I" * len(keep)

    def reduce(observable: Mapping[str, float]) -> tuple[dict[str, float], float]:
        reduced: dict[str, float] = {}
        for label, coefficient in observable.items():
            factor = 1.0
            for qubit in drop:
                char = label[width - 1 - qubit]
                factor *= _ON_ZERO.get(char, _ON_ZERO_HALF)
            if factor:
                kept = "".join(label[width - 1 - qubit] for qubit in reversed(keep))
                reduced[kept] = reduced.get(kept, 0.0) + coefficient * factor
        if any(abs(coefficient) > _ZERO for coefficient in reduced.values()):
            return reduced, 0.0
        return {identity: 1.0}, -1.0

    nested = _map_nested(pub.observables.tolist(), reduce)
    observables = ObservablesArray(_map_nested(nested, lambda pair: pair[0]))
    offsets = np.asarray(_map_nested(nested, lambda pair: pair[1]), dtype=np.float64)
    in_use = without_idle_qubits(circuit)
    return _InUse(
        EstimatorPub(in_use, observables, pub.parameter_values, pub.precision, validate=False),
        offsets if offsets.any() else None,
    )


#: a reduced coefficient this small is a cancellation: the observable is zero
_ZERO = 1e-12


def _map_nested(value: Any, function: Callable[[Any], Any]) -> Any:
    """`function` applied to each leaf (observable) of nested lists, keeping their nesting."""
    if isinstance(value, (Mapping, tuple)):
        return function(value)
    return [_map_nested(item, function) for item in value]


def _sample(pubs: list[Any], seed: int | None) -> PrimitiveResult:
    """Qiskit's reference sampler, as is; its errors (mid-circuit measurement, ...) fail the job."""
    try:
        return cast(PrimitiveResult, StatevectorSampler(default_shots=DEFAULT_SHOTS, seed=seed).run(pubs).result())
    except QiskitError as exc:
        raise InvalidInputError(f"the simulated sampler cannot run this job: {exc}") from exc


def _estimate(pubs: list[_InUse], seed: int | None, shots: list[int]) -> PrimitiveResult:
    """Qiskit's reference estimator, with adjustments for a stand-in of a QPU.

    - Final measurements are stripped first and observables reduced to the qubits in use
      (`_estimator_pub_in_use`, in `prepare`): measurements do not change an expectation
      value, users often leave them in, and the statevector cannot apply them.
    - ``stds`` is the precision: the reference draws each value from a normal distribution of
      that width around the exact one but reports 0, which would claim an exactness it lacks.
    - ``shots`` is in each PUB's metadata, as IBM's estimator reports it (`_estimator_shots`).
    """
    try:
        estimator = StatevectorEstimator(default_precision=DEFAULT_PRECISION, seed=seed)
        result = estimator.run([in_use.pub for in_use in pubs]).result()
    except QiskitError as exc:
        raise InvalidInputError(f"the simulated estimator cannot run this job: {exc}") from exc
    pub_results = []
    for in_use, pub_result, pub_shots in zip(pubs, result, shots, strict=True):
        evs = pub_result.data.evs
        if in_use.offsets is not None:
            evs = np.asarray(evs + np.broadcast_to(in_use.offsets, in_use.pub.shape))
        stds = np.full_like(evs, in_use.pub.precision, dtype=np.float64)
        metadata = {**pub_result.metadata, "shots": pub_shots}
        pub_results.append(PubResult(DataBin(evs=evs, stds=stds, shape=evs.shape), metadata=metadata))
    return PrimitiveResult(pub_results, metadata=result.metadata)


def _estimator_shots(inputs: object, precision: float) -> int:
    """The shots a device would take for an estimator PUB, as IBM's estimator reports them.

    IBM's rule: with twirling on and both ``num_randomizations`` and ``shots_per_randomization``
    set, their product; else ``default_shots`` when set; else the shots whose standard error is
    the precision, ``ceil(1 / precision**2)`` (4096 at the default 1/64).
    """
    options = inputs.get("options") if isinstance(inputs, Mapping) else None
    options = options if isinstance(options, Mapping) else {}
    twirling = options.get("twirling")
    if isinstance(twirling, Mapping) and (twirling.get("enable_gates") or twirling.get("enable_measure")):
        randomizations, per_randomization = twirling.get("num_randomizations"), twirling.get("shots_per_randomization")
        if _count(randomizations) and _count(per_randomization):
            return int(cast(int, randomizations)) * int(cast(int, per_randomization))
    default_shots = options.get("default_shots")
    if _count(default_shots):
        return int(cast(int, default_shots))
    return DEFAULT_SHOTS * 64 if precision <= 0 else max(1, math.ceil(1 / precision**2))


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
