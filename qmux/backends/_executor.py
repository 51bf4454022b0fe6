"""IBM's ``executor`` program on a simulated device: the quantum programs of qiskit-ibm-runtime's new primitives.

qiskit-ibm-runtime 0.51's ``Executor`` and the primitives built on it (``executor_sampler.Sampler``,
``executor_estimator.Estimator``, which replace the deprecated V2 primitives) submit *quantum
programs* to program ``"executor"``: a number of shots and a list of items, each one circuit with

- *circuit arguments* (a ``CircuitItem``): an array whose last axis binds the circuit's
  parameters; every other element is one bound circuit to sample, or
- a *samplex* (a ``SamplexItem``, samplomatic's randomization of a circuit: twirling, noise
  injection for PEC, measurement flips): sampled ``shape`` times to give the parameter values
  (and what the client needs to undo the randomization), then each bound circuit sampled.

`prepare` reads the params with the client's own schema and converters (the ``ibm`` extra:
qiskit-ibm-runtime and samplomatic), checks every circuit for the device as the sampler does
(width, couplings), and returns the `Simulation` that samples every bound circuit on qiskit's
reference sampler, ideal and seeded like the other programs. Its result is a `ProgramResult`:
per item, each classical register's outcomes as booleans of shape ``item shape + (shots,
bits)`` beside the samplex's own outputs, which ``qmux.ibm`` writes in the result schema the
client decodes. Noise maps for noise injection are ignored: the simulation is ideal.
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from attrs import frozen
from qiskit.circuit import QuantumCircuit
from qiskit.exceptions import QiskitError
from qiskit.primitives import BindingsArray, StatevectorSampler
from qiskit.primitives.containers.sampler_pub import SamplerPub

from .._core import InvalidInputError, QiskitNotInstalledError
from ._program import ProgramItem, ProgramResult
from ._simulate import Device, Simulation, check_circuit

__all__ = ["prepare_program"]

INSTALL_HINT = "pip install 'qmux[ibm]'"
#: seconds per shot drawn, as `_simulate` measures them: only the order of magnitude matters
_PER_SHOT = 2e-6
_PER_BOUND_CIRCUIT = 1e-3


@frozen
class _Item:
    circuit: QuantumCircuit
    shape: tuple[int, ...]
    #: circuit arguments of shape ``shape + (parameters,)``, or a samplex and its arguments
    arguments: np.ndarray[Any, Any] | None
    samplex: Any = None
    samplex_arguments: Any = None


def prepare_program(inputs: object, device: Device) -> Simulation:
    """Check an ``"executor"`` job for `device` (see the module docstring); `InvalidInputError` if it cannot run."""
    converters = _converters()
    if not isinstance(inputs, Mapping):
        raise InvalidInputError(f"an executor job's params must be a mapping, not a {type(inputs).__name__}")
    version = inputs.get("schema_version")
    converter = converters.get(version) if isinstance(version, str) else None
    if converter is None:
        raise InvalidInputError(
            f"executor params of schema_version={version!r} are not supported; use one of: {', '.join(converters)}"
        )
    try:
        program, _options = converter.decoder(converter.model.model_validate(dict(inputs)))
    except (ValueError, TypeError, KeyError, QiskitError) as exc:
        raise InvalidInputError(f"the executor params are not a valid quantum program: {exc}") from exc
    if program.meas_level != "classified":
        raise InvalidInputError(
            f"meas_level={program.meas_level!r}: a simulated device returns classified bits only; use 'classified'"
        )
    items: list[_Item] = []
    cost = 0.0
    for index, item in enumerate(program.items):
        circuit = check_circuit(item.circuit, f"quantum program item {index}", device)
        if hasattr(item, "samplex"):
            shape = tuple(item.shape)
            samplex = item.samplex
            if not getattr(samplex, "_finalized", True):  # as read from JSON: its traversal order is not set
                samplex.finalize()
            items.append(_Item(circuit, shape, None, samplex, item.samplex_arguments))
        else:
            arguments = np.asarray(item.circuit_arguments, dtype=float)
            shape = tuple(arguments.shape[:-1])
            items.append(_Item(circuit, shape, arguments))
        cost += math.prod(shape) * (_PER_BOUND_CIRCUIT + _PER_SHOT * program.shots)
    shots, passthrough, role = program.shots, program.passthrough_data, program._semantic_role
    seed = device.seed
    return Simulation(cost, lambda: _run(items, shots, seed, passthrough, role))


def _converters() -> Mapping[str, Any]:
    try:
        module = importlib.import_module("qiskit_ibm_runtime.quantum_program.params_converters")
    except ImportError as exc:
        raise QiskitNotInstalledError(
            f"the 'executor' program reads IBM's quantum programs with qiskit-ibm-runtime, which is not installed "
            f"({exc.name} is missing); install it with: {INSTALL_HINT}"
        ) from exc
    converters: Mapping[str, Any] = module.QUANTUM_PROGRAM_PARAMS_CONVERTERS
    return converters


def _run(items: list[_Item], shots: int, seed: int | None, passthrough: Any, role: str | None) -> ProgramResult:
    started = dt.datetime.now(dt.UTC)
    rng = np.random.default_rng(seed)
    sampler = StatevectorSampler(seed=rng)
    done = []
    for item in items:
        outputs: dict[str, np.ndarray[Any, Any]] = {}
        if item.samplex is not None:
            outputs = _sample_samplex(item, rng)
            arguments = outputs.pop("parameter_values")
        else:
            assert item.arguments is not None
            arguments = item.arguments
        outcome = _sample_circuit(sampler, item.circuit, arguments, item.shape, shots)
        done.append(ProgramItem({**outputs, **outcome}, item.shape))
    return ProgramResult(tuple(done), passthrough, role, started, dt.datetime.now(dt.UTC))


def _sample_circuit(
    sampler: StatevectorSampler,
    circuit: QuantumCircuit,
    arguments: np.ndarray[Any, Any],
    shape: tuple[int, ...],
    shots: int,
) -> dict[str, np.ndarray[Any, Any]]:
    """Each register's outcomes, as booleans of shape ``shape + (shots, bits)`` (bit 0 first)."""
    parameters = tuple(circuit.parameters)
    if parameters:
        bindings = BindingsArray({parameters: np.broadcast_to(arguments, (*shape, len(parameters)))})
    else:
        bindings = BindingsArray(shape=shape)
    try:
        result = sampler.run([SamplerPub(circuit, bindings, shots)]).result()
    except QiskitError as exc:
        raise InvalidInputError(f"the simulated executor cannot run this program: {exc}") from exc
    return {name: bits.to_bool_array(order="little") for name, bits in result[0].data.items()}


def _sample_samplex(item: _Item, rng: np.random.Generator) -> dict[str, np.ndarray[Any, Any]]:
    """The samplex's outputs for every element of the item's shape, as arrays of shape ``shape + (...)``.

    Axes where the samplex's arguments vary (size > 1, aligned to the right of the shape) are
    sweeps: the samplex is sampled once per point of them. The other axes are randomizations:
    each sample draws as many as they hold.
    """
    shape = item.shape
    arguments = item.samplex_arguments
    padded = (1,) * (len(shape) - arguments.ndim) + tuple(arguments.shape)
    sweep_axes = [axis for axis in range(len(shape)) if padded[axis] > 1]
    random_axes = [axis for axis in range(len(shape)) if padded[axis] <= 1]
    draws = math.prod(shape[axis] for axis in random_axes)
    outputs: dict[str, np.ndarray[Any, Any]] = {}
    for point in np.ndindex(*(shape[axis] for axis in sweep_axes)):
        coordinates = iter(point)
        selector = tuple(next(coordinates) if size > 1 else 0 for size in arguments.shape)
        sample = dict(item.samplex.sample(arguments[selector], num_randomizations=draws, rng=rng))
        coordinates = iter(point)
        target = tuple(next(coordinates) if size > 1 else slice(None) for size in padded)
        for name, value in sample.items():
            if name not in outputs:
                outputs[name] = np.empty((*shape, *value.shape[1:]), dtype=value.dtype)
            outputs[name][target] = value.reshape(*(shape[axis] for axis in random_axes), *value.shape[1:])
    return outputs
