"""The inputs that cross from a primitive to a backend: plain data in IBM's wire shape (SPEC P1, P2).

The client writes them through `qmux.primitives._pubs`; the backend reads them back through
the same checks, and never trusts them: a malformed job fails alone (SPEC J3).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.quantum_info import SparsePauliOp

import qmux
from qmux.backends import LocalBackend
from qmux.primitives._pubs import estimator_inputs, read_estimator_inputs, read_sampler_inputs, sampler_inputs


def bell(measure: bool = True) -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    if measure:
        circuit.measure_all()
    return circuit


def two_parameters() -> tuple[QuantumCircuit, Parameter, Parameter]:
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(2)
    circuit.ry(b, 0)  # b first in the circuit; circuit.parameters sorts them by name: (a, b)
    circuit.ry(a, 1)
    circuit.measure_all()
    return circuit, a, b


def _json_default(value: object) -> object:
    """What the HTTP layer encodes specially (QPY, .npy); everything else must be JSON already."""
    if isinstance(value, QuantumCircuit):
        return "<circuit>"
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not plain data: {type(value).__name__}")


def test_p1_sampler_inputs_are_plain_data_in_ibm_shape() -> None:
    circuit, a, b = two_parameters()
    original = bell()
    inputs = sampler_inputs([(original,), (circuit, {b: [0.1, 0.2], a: [0.3, 0.4]}, 10)], shots=100, seed=None)
    assert inputs["version"] == 2 and inputs["shots"] == 100 and "options" not in inputs
    (c0, v0, s0), (c1, v1, s1) = inputs["pubs"]
    assert c0 is not original and c0 == original  # a snapshot: later edits of the circuit do not leak in
    assert v0 is None and s0 is None
    assert c1 == circuit and s1 == 10
    np.testing.assert_array_equal(v1, [[0.3, 0.1], [0.4, 0.2]])  # shape (2, 2), ordered as circuit.parameters
    json.dumps(inputs, default=_json_default)


def test_p2_estimator_inputs_carry_observables_as_dicts_of_floats() -> None:
    inputs = estimator_inputs(
        [(bell(False), SparsePauliOp(["ZZ", "XX"], [1.0, 0.5])), (bell(False), [["ZI"], ["IZ"]], None, 0.01)],
        precision=None,
        seed=7,
    )
    assert inputs["precision"] is None and inputs["options"] == {"simulator": {"seed_simulator": 7}}
    (_, obs0, v0, p0), (_, obs1, v1, p1) = inputs["pubs"]
    assert obs0 == {"ZZ": 1.0, "XX": 0.5} and all(type(c) is float for c in obs0.values())
    assert obs1 == [[{"ZI": 1.0}], [{"IZ": 1.0}]]
    assert v0 is None and v1 is None and p0 is None and p1 == 0.01
    json.dumps(inputs, default=_json_default)


def test_p1_p2_wire_round_trip_gives_qiskits_pubs_with_defaults_filled() -> None:
    circuit, _, _ = two_parameters()
    values = np.arange(12, dtype=float).reshape(3, 2, 2)
    wire = sampler_inputs([(circuit, values), (bell(), None, 5)], shots=None, seed=3)
    read = read_sampler_inputs(wire, default_shots=4096)
    assert read.seed == 3
    assert [pub.shots for pub in read.pubs] == [4096, 5]
    assert read.pubs[0].shape == (3, 2)
    np.testing.assert_array_equal(read.pubs[0].parameter_values.as_array(circuit.parameters), values)

    wire = estimator_inputs([(bell(False), "ZZ"), (bell(False), "XX", None, 0.0)], precision=0.05, seed=None)
    read_e = read_estimator_inputs(wire, default_precision=0.015625)
    assert [pub.precision for pub in read_e.pubs] == [0.05, 0.0]
    assert read_e.seed is None
    wire["precision"] = None
    assert [pub.precision for pub in read_estimator_inputs(wire, default_precision=0.015625).pubs] == [0.015625, 0.0]


def test_p1_backend_reads_what_qiskit_ibm_runtime_sends() -> None:
    """Its pubs carry ``parameter_values`` as an ndarray of shape (0,) and its params extra keys."""
    params = {
        "pubs": [[bell(), np.zeros((0,)), 100], [bell(), np.zeros((0,)), None]],
        "options": {"default_shots": 64, "simulator": {"seed_simulator": 1}, "twirling": {"enable_gates": False}},
        "version": 2,
        "support_qiskit": True,
    }
    read = read_sampler_inputs(params, default_shots=4096)
    assert [pub.shape for pub in read.pubs] == [(), ()]
    assert [pub.shots for pub in read.pubs] == [100, 64] and read.seed == 1
    params = {"pubs": [[bell(False), {"ZZ": 1.0}, np.zeros((0,)), None]], "options": {"default_precision": 0.5}}
    assert read_estimator_inputs(params, default_precision=0.0).pubs[0].precision == 0.5


WIRE_MISTAKES: list[tuple[str, Any, str]] = [
    ("not a mapping", [[bell()]], "must be a mapping with 'pubs'"),
    ("no pubs", {"version": 2}, "need 'pubs': a non-empty list"),
    ("empty pubs", {"pubs": []}, "need 'pubs': a non-empty list"),
    ("old version", {"pubs": [[bell()]], "version": 1}, "version=1; only version 2"),
    ("pub as a mapping", {"pubs": [{"circuit": bell()}]}, "sampler pub 0 is a dict, not a tuple"),
    ("shots as text", {"pubs": [[bell()]], "shots": "many"}, "shots='many' must be a positive whole number"),
    ("negative pub shots", {"pubs": [[bell(), None, -1]]}, "sampler pub 0 shots=-1"),
    ("options not a mapping", {"pubs": [[bell()]], "options": [1]}, "'options' must be a mapping"),
    ("negative seed", {"pubs": [[bell()]], "options": {"simulator": {"seed_simulator": -3}}}, "seed_simulator=-3"),
    ("simulator options not a mapping", {"pubs": [[bell()]], "options": {"simulator": 3}}, "'options.simulator' must"),
    ("bad default shots", {"pubs": [[bell()]], "options": {"default_shots": -4}}, "options.default_shots=-4"),
]


@pytest.mark.parametrize(("inputs", "message"), [m[1:] for m in WIRE_MISTAKES], ids=[m[0] for m in WIRE_MISTAKES])
def test_p1_backend_never_trusts_the_wire(inputs: Any, message: str) -> None:
    with pytest.raises(qmux.InvalidInputError, match=message):
        read_sampler_inputs(inputs, default_shots=4096)


def test_p2_backend_refuses_an_observable_of_the_wrong_width() -> None:
    with pytest.raises(qmux.InvalidInputError, match="estimator pub 0"):
        read_estimator_inputs({"pubs": [[bell(False), {"ZZZ": 1.0}, None, None]]}, default_precision=0.0)


def test_p1_p2_qiskit_pub_objects_are_accepted_as_they_are() -> None:
    wire = sampler_inputs([SamplerPub.coerce(bell(), shots=9)], shots=None, seed=None)
    assert wire["pubs"][0][2] == 9
    wire = estimator_inputs([EstimatorPub.coerce((bell(False), "ZZ"), precision=0.5)], precision=None, seed=None)
    assert wire["pubs"][0][3] == 0.5


async def test_j3_a_job_with_malformed_inputs_fails_alone() -> None:
    backend = LocalBackend("qpu", qmux.BackendConfig(num_qubits=5))
    async with qmux.open_service([backend]) as service, qmux.Session(service=service, backend="qpu") as session:
        bad = await session.run("sampler", {"pubs": [[bell(), None, 0]], "version": 2})
        good = await session.run("sampler", sampler_inputs([bell()], shots=10, seed=None))
        with pytest.raises(qmux.JobFailedError, match="sampler pub 0 shots=0") as failure:
            await bad.result()
        assert isinstance(failure.value.__cause__, qmux.InvalidInputError)
        assert (await good.result())[0].data.meas.num_shots == 10
