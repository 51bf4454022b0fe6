"""PUBs (primitive unified blocs): coerced and checked the same way on both sides of the wire.

The client side (`Sampler.run`, `Estimator.run`) turns what users pass into plain data in IBM's
wire shape (IBM-RUNTIME-WIRE.md, "Payload encodings"); the backend side reads that shape back
through the very same checks, because a backend never trusts its wire (a remote client may send
anything). The inputs of a job are::

    sampler:   {"pubs": [[circuit, parameter_values | None, shots | None], ...],
                "shots": int | None, "version": 2}
    estimator: {"pubs": [[circuit, observables, parameter_values | None, precision | None], ...],
                "precision": float | None, "version": 2}

with ``parameter_values`` an ndarray of shape ``(*pub_shape, num_parameters)`` ordered as
``circuit.parameters``, ``observables`` a ``{"ZZ": 1.0}`` dict or a nested list of such dicts
(``ObservablesArray.tolist()``), and, where the user asks for a seed, ``"options":
{"simulator": {"seed_simulator": int}}`` as IBM's options carry it. A PUB's own shots or precision
win over the job's, which win over ``options.default_shots`` / ``options.default_precision``
(where qiskit-ibm-runtime puts them), which win over the backend's default. The backend reads
qiskit-ibm-runtime's ``params`` unchanged; keys it does not know (twirling, ...) are ignored.

This module imports qiskit: import it only after `require_qiskit` has passed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any, cast

import numpy as np
from attrs import frozen
from qiskit.circuit import QuantumCircuit
from qiskit.exceptions import QiskitError
from qiskit.primitives.containers.bindings_array import BindingsArray
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.observables_array import ObservablesArray
from qiskit.primitives.containers.sampler_pub import SamplerPub

from .._core import InvalidInputError

__all__ = [
    "ESTIMATOR_FORMS",
    "SAMPLER_FORMS",
    "EstimatorInputs",
    "SamplerInputs",
    "check_precision",
    "check_seed",
    "check_shots",
    "coerce_estimator_pub",
    "coerce_sampler_pub",
    "estimator_inputs",
    "read_estimator_inputs",
    "read_sampler_inputs",
    "sampler_inputs",
]

SAMPLER_FORMS = "(circuit,), (circuit, parameter_values) or (circuit, parameter_values, shots)"
ESTIMATOR_FORMS = (
    "(circuit, observables), (circuit, observables, parameter_values) "
    "or (circuit, observables, parameter_values, precision)"
)
#: the PUB format version the wire carries; the V2 primitives' format is the only one there is
VERSION = 2
_BAD_PUB = (TypeError, ValueError, IndexError, KeyError, QiskitError)


# -- scalars -----------------------------------------------------------------------------------


def check_shots(value: object, name: str) -> int | None:
    """`value` as a positive int, ``None`` for "the default", else a clear `InvalidInputError`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) <= 0:
        raise InvalidInputError(f"{name}={value!r} must be a positive whole number of shots, or None for the default")
    return int(value)


def check_precision(value: object, name: str) -> float | None:
    """`value` as a finite float >= 0, ``None`` for "the default", else a clear `InvalidInputError`."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
        or float(value) < 0
    ):
        raise InvalidInputError(
            f"{name}={value!r} must be a finite number >= 0 (the target standard error of each "
            "expectation value; 0 means exact), or None for the default"
        )
    return float(value)


def check_seed(value: object, name: str) -> int | None:
    """`value` as an int >= 0 (what numpy seeds with), or ``None`` for fresh randomness."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 0:
        raise InvalidInputError(f"{name}={value!r} must be a whole number >= 0, or None for an unseeded run")
    return int(value)


# -- one PUB -----------------------------------------------------------------------------------


def coerce_sampler_pub(pub: object, index: int) -> SamplerPub:
    """Check one sampler PUB as users or the wire give it and return qiskit's `SamplerPub`.

    Its shots stay ``None`` unless the PUB names them: defaults are filled in by the backend.
    """
    where = f"sampler pub {index}"
    if isinstance(pub, SamplerPub):
        pub = (pub.circuit, pub.parameter_values, pub.shots)
    elif isinstance(pub, QuantumCircuit):
        pub = (pub,)
    parts = _parts(pub, where, (1, 2, 3), SAMPLER_FORMS)
    circuit = _circuit(parts[0], where)
    if not circuit.cregs:
        raise InvalidInputError(
            f"{where}: its circuit has no classical register, so there is nothing to sample; "
            "measure into one (circuit.measure_all() adds the register 'meas')"
        )
    shots = check_shots(parts[2], f"{where} shots") if len(parts) > 2 else None
    values = _check_values(circuit, parts[1] if len(parts) > 1 else None, where)
    try:
        return SamplerPub.coerce((circuit, values, shots))
    except _BAD_PUB as exc:
        raise InvalidInputError(f"{where}: {exc}") from exc


def coerce_estimator_pub(pub: object, index: int) -> EstimatorPub:
    """Check one estimator PUB as users or the wire give it and return qiskit's `EstimatorPub`.

    Its precision stays ``None`` unless the PUB names it: defaults are filled in by the backend.
    """
    where = f"estimator pub {index}"
    if isinstance(pub, EstimatorPub):
        pub = (pub.circuit, pub.observables, pub.parameter_values, pub.precision)
    elif isinstance(pub, QuantumCircuit):
        raise InvalidInputError(f"{where} is a bare circuit; an estimator PUB needs observables: {ESTIMATOR_FORMS}")
    parts = _parts(pub, where, (2, 3, 4), ESTIMATOR_FORMS)
    circuit = _circuit(parts[0], where)
    precision = check_precision(parts[3], f"{where} precision") if len(parts) > 3 else None
    values = _check_values(circuit, parts[2] if len(parts) > 2 else None, where)
    try:
        return EstimatorPub.coerce((circuit, parts[1], values, precision))
    except _BAD_PUB as exc:
        raise InvalidInputError(f"{where}: {exc}") from exc


def _parts(pub: object, where: str, lengths: tuple[int, ...], forms: str) -> tuple[Any, ...]:
    if not isinstance(pub, (tuple, list)):
        raise InvalidInputError(f"{where} is a {type(pub).__name__}, not a tuple; a PUB is {forms}")
    if len(pub) not in lengths:
        raise InvalidInputError(f"{where} has {len(pub)} elements; a PUB is {forms}")
    return tuple(pub)


def _circuit(value: object, where: str) -> QuantumCircuit:
    if not isinstance(value, QuantumCircuit):
        raise InvalidInputError(f"{where} starts with a {type(value).__name__}; a PUB starts with a QuantumCircuit")
    return value


def _check_values(circuit: QuantumCircuit, values: object, where: str) -> object:
    """Refuse an array of parameter values that cannot bind `circuit`, saying what shape would.

    Mappings and `BindingsArray`s name their parameters and are left to qiskit's own checks.
    """
    if values is None or isinstance(values, (BindingsArray, Mapping)):
        return values
    try:
        shape: tuple[int, ...] = np.shape(cast(Any, values))
    except ValueError:
        raise InvalidInputError(f"{where}: parameter_values is a ragged sequence; give a rectangular array") from None
    wanted = circuit.num_parameters
    # no parameters: an empty array only; one: any shape (a value per binding); more: shape (..., wanted)
    binds = wanted == 1 or (bool(shape) and shape[-1] == wanted)
    fits = int(np.prod(shape, dtype=int)) == 0 if wanted == 0 else binds
    if not fits:
        names = ", ".join(p.name for p in circuit.parameters) or "none"
        raise InvalidInputError(
            f"{where}: parameter_values of shape {shape} do not fit a circuit with {wanted} parameters ({names}); "
            f"give an array of shape (..., {wanted}), values in the order of circuit.parameters"
        )
    return values


# -- the wire, client side ---------------------------------------------------------------------


def sampler_inputs(pubs: object, *, shots: int | None, seed: int | None) -> dict[str, Any]:
    """The inputs of a ``"sampler"`` job: user PUBs checked and put in the wire shape."""
    coerced = [coerce_sampler_pub(pub, i) for i, pub in enumerate(_pub_list(pubs, "sampler", SAMPLER_FORMS))]
    inputs: dict[str, Any] = {
        "pubs": [
            [pub.circuit.copy(), _values_to_wire(pub.circuit, pub.parameter_values), pub.shots] for pub in coerced
        ],
        "shots": check_shots(shots, "shots"),
        "version": VERSION,
    }
    return _with_seed(inputs, seed)


def estimator_inputs(pubs: object, *, precision: float | None, seed: int | None) -> dict[str, Any]:
    """The inputs of an ``"estimator"`` job: user PUBs checked and put in the wire shape."""
    coerced = [coerce_estimator_pub(pub, i) for i, pub in enumerate(_pub_list(pubs, "estimator", ESTIMATOR_FORMS))]
    inputs: dict[str, Any] = {
        "pubs": [
            [
                pub.circuit.copy(),
                _observables_to_wire(pub.observables),
                _values_to_wire(pub.circuit, pub.parameter_values),
                pub.precision,
            ]
            for pub in coerced
        ],
        "precision": check_precision(precision, "precision"),
        "version": VERSION,
    }
    return _with_seed(inputs, seed)


def _pub_list(pubs: object, kind: str, forms: str) -> list[object]:
    """`pubs` as a list, refusing the classic slip of passing one PUB instead of a list of them."""
    one_pub = isinstance(pubs, QuantumCircuit) or (
        isinstance(pubs, tuple)
        and bool(pubs)
        and isinstance(pubs[0], QuantumCircuit)
        and not all(isinstance(item, QuantumCircuit) for item in pubs)
    )
    if one_pub:
        raise InvalidInputError(
            f"{kind}.run() takes a list of PUBs; wrap a single one in a list: run([pub]), a PUB is {forms}"
        )
    if isinstance(pubs, (str, bytes, Mapping)) or not isinstance(pubs, Iterable):
        raise InvalidInputError(f"{kind}.run() takes a list of PUBs, not a {type(pubs).__name__}; a PUB is {forms}")
    items = list(pubs)
    if not items:
        raise InvalidInputError(f"{kind}.run() got no PUBs; pass a list of at least one: {forms}")
    return items


def _values_to_wire(circuit: QuantumCircuit, values: BindingsArray) -> np.ndarray[Any, Any] | None:
    """``None`` for a circuit without parameters, else the values ordered as ``circuit.parameters``."""
    if circuit.num_parameters == 0 and values.shape == ():
        return None
    return np.asarray(values.as_array(circuit.parameters), dtype=float)


def _observables_to_wire(observables: ObservablesArray) -> object:
    return _plain(observables.tolist())


def _plain(value: object) -> object:
    """Nested lists of ``{label: coefficient}`` with builtin floats, as JSON would carry them."""
    if isinstance(value, Mapping):
        return {str(label): float(coeff) for label, coeff in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _with_seed(inputs: dict[str, Any], seed: int | None) -> dict[str, Any]:
    checked = check_seed(seed, "seed")
    if checked is not None:
        inputs["options"] = {"simulator": {"seed_simulator": checked}}
    return inputs


# -- the wire, backend side --------------------------------------------------------------------


@frozen
class SamplerInputs:
    """A sampler job's inputs as read from the wire: PUBs with their shots filled in."""

    pubs: tuple[SamplerPub, ...]
    seed: int | None


@frozen
class EstimatorInputs:
    """An estimator job's inputs as read from the wire: PUBs with their precision filled in."""

    pubs: tuple[EstimatorPub, ...]
    seed: int | None


def read_sampler_inputs(inputs: object, *, default_shots: int) -> SamplerInputs:
    """Check a ``"sampler"`` job's inputs as they arrive at a backend; never trusts them."""
    mapping, raw_pubs = _read_envelope(inputs, "sampler", SAMPLER_FORMS)
    options = _read_options(mapping)
    shots = (
        check_shots(mapping.get("shots"), "shots")
        or check_shots(options.get("default_shots"), "options.default_shots")
        or default_shots
    )
    pubs = tuple(SamplerPub.coerce(coerce_sampler_pub(pub, i), shots) for i, pub in enumerate(raw_pubs))
    return SamplerInputs(pubs, _read_seed(options))


def read_estimator_inputs(inputs: object, *, default_precision: float) -> EstimatorInputs:
    """Check an ``"estimator"`` job's inputs as they arrive at a backend; never trusts them."""
    mapping, raw_pubs = _read_envelope(inputs, "estimator", ESTIMATOR_FORMS)
    options = _read_options(mapping)
    precision = check_precision(mapping.get("precision"), "precision")
    if precision is None:
        precision = check_precision(options.get("default_precision"), "options.default_precision")
    fallback = default_precision if precision is None else precision
    pubs = tuple(EstimatorPub.coerce(coerce_estimator_pub(pub, i), fallback) for i, pub in enumerate(raw_pubs))
    return EstimatorInputs(pubs, _read_seed(options))


def _read_envelope(inputs: object, kind: str, forms: str) -> tuple[Mapping[str, Any], list[object]]:
    if not isinstance(inputs, Mapping):
        raise InvalidInputError(f"a {kind} job's inputs must be a mapping with 'pubs', not a {type(inputs).__name__}")
    version = inputs.get("version", VERSION)
    if version != VERSION:
        raise InvalidInputError(f"{kind} inputs have version={version!r}; only version {VERSION} PUBs are supported")
    raw_pubs = inputs.get("pubs")
    if not isinstance(raw_pubs, (list, tuple)) or not raw_pubs:
        raise InvalidInputError(f"a {kind} job's inputs need 'pubs': a non-empty list of {forms}")
    return inputs, list(raw_pubs)


def _read_options(inputs: Mapping[str, Any]) -> Mapping[str, Any]:
    """IBM's ``options``: qmux reads ``default_shots``, ``default_precision`` and the simulator seed."""
    options = inputs.get("options") or {}
    if not isinstance(options, Mapping):
        raise InvalidInputError("'options' must be a mapping such as {'simulator': {'seed_simulator': 42}}")
    return options


def _read_seed(options: Mapping[str, Any]) -> int | None:
    simulator = options.get("simulator") or {}
    if not isinstance(simulator, Mapping):
        raise InvalidInputError("'options.simulator' must be a mapping such as {'seed_simulator': 42}")
    return check_seed(simulator.get("seed_simulator"), "seed_simulator")
