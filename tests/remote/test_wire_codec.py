"""The wire encoding of job inputs and results (qmux._wire): round trips on real qiskit objects.

The layouts mirror qiskit-ibm-runtime's RuntimeEncoder, so the names and shapes are checked
as well as the round trips; decoding is bounded because the server decodes what anyone sends.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import subprocess
import sys
import typing
import zlib
from typing import Any

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import BitArray, DataBin, PrimitiveResult, PubResult, SamplerPubResult
from qiskit.primitives.containers.observables_array import ObservablesArray

import qmux
from qmux import _wire


def round_trip(value: object) -> Any:
    """Encode, go through JSON text as the wire does, decode."""
    return _wire.decode(json.loads(json.dumps(_wire.encode(value), allow_nan=False)))


def bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2, name="bell")
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return circuit


def test_plain_json_stays_plain() -> None:
    value = {"a": [1, 2.5, None, True, "x"], "b": {"c": []}}
    assert _wire.encode(value) == value
    assert round_trip(value) == value
    assert _wire.encode((1, (2, 3))) == [1, [2, 3]]  # tuples travel as lists, as in RuntimeEncoder


def test_python_types_that_json_lacks() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert round_trip(1 + 2j) == 1 + 2j
    assert round_trip({1, 2}) == {1, 2}
    assert round_trip(when) == when
    assert math.isnan(round_trip(float("nan")))
    assert round_trip([float("inf"), -float("inf")]) == [float("inf"), -float("inf")]
    assert _wire.encode(1 + 2j) == {"__type__": "complex", "__value__": [1.0, 2.0]}


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.int64).reshape(3, 4),
        np.linspace(0, 1, 7),
        np.array([1 + 1j, 2 - 1j]),
        np.zeros((0, 3), dtype=np.uint8),
        np.array(3.5),
        np.array([True, False]),
    ],
)
def test_ndarray_round_trips_with_dtype_and_shape(array: np.ndarray[Any, Any]) -> None:
    decoded = round_trip(array)
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)


def test_ndarray_layout_is_base64_zlib_npy_as_ibm_writes_it() -> None:
    encoded = _wire.encode(np.arange(3))
    assert encoded["__type__"] == "ndarray"
    raw = zlib.decompress(base64.standard_b64decode(encoded["__value__"]))
    assert raw.startswith(b"\x93NUMPY")


def test_numpy_scalars_become_python_values() -> None:
    assert _wire.encode({"n": np.int64(3), "x": np.float32(0.5)}) == {"n": 3, "x": 0.5}


def test_circuit_round_trips_through_qpy() -> None:
    theta = Parameter("θ")
    circuit = bell()
    circuit.rz(theta, 0)
    encoded = _wire.encode(circuit)
    assert encoded["__type__"] == "QuantumCircuit"
    assert zlib.decompress(base64.standard_b64decode(encoded["__value__"])).startswith(b"QISKIT")
    decoded = round_trip(circuit)
    assert decoded == circuit
    assert decoded.name == "bell" and [p.name for p in decoded.parameters] == ["θ"]


def test_sampler_inputs_in_ibm_wire_shape_round_trip() -> None:
    inputs = {"pubs": [[bell(), None, 100], [bell(), np.array([[0.1], [0.2]]), None]], "shots": None, "version": 2}
    decoded = round_trip(inputs)
    assert decoded["pubs"][0] == [bell(), None, 100]
    np.testing.assert_array_equal(decoded["pubs"][1][1], [[0.1], [0.2]])
    assert decoded["version"] == 2


def test_estimator_observables_round_trip() -> None:
    observables = ObservablesArray([{"ZZ": 1.0}, {"XX": 0.5, "YY": -0.5}])
    decoded = round_trip(observables)
    assert isinstance(decoded, ObservablesArray)
    assert decoded.tolist() == observables.tolist()


def sampler_result() -> PrimitiveResult[SamplerPubResult]:
    meas = BitArray(np.array([[0], [3], [3], [0]], dtype=np.uint8), num_bits=2)
    other = BitArray(np.array([[1], [0], [1], [1]], dtype=np.uint8), num_bits=1)
    return PrimitiveResult(
        [SamplerPubResult(DataBin(meas=meas, c=other, shape=()), metadata={"shots": 4, "circuit_metadata": {}})],
        metadata={"version": 2},
    )


def test_sampler_result_round_trips_with_counts_and_metadata() -> None:
    result = sampler_result()
    decoded = round_trip(result)
    assert isinstance(decoded, PrimitiveResult) and isinstance(decoded[0], SamplerPubResult)
    assert decoded[0].data.meas.get_counts() == {"00": 2, "11": 2}  # SPEC P1 over the wire
    assert decoded[0].data.c.get_counts() == result[0].data.c.get_counts()
    assert decoded[0].data.meas.array.dtype == np.uint8 and decoded[0].data.meas.array.shape == (4, 1)
    assert list(decoded[0].data) == ["meas", "c"]
    assert decoded[0].metadata == {"shots": 4, "circuit_metadata": {}}
    assert decoded.metadata == {"version": 2}


def test_result_layout_mirrors_runtime_encoder() -> None:
    encoded = _wire.encode(sampler_result())
    assert encoded["__type__"] == "PrimitiveResult"
    pub = encoded["__value__"]["pub_results"][0]
    assert pub["__type__"] == "SamplerPubResult"
    data = pub["__value__"]["data"]
    assert data["__type__"] == "DataBin"
    assert data["__value__"]["field_names"] == ["meas", "c"] and data["__value__"]["shape"] == []
    bits = data["__value__"]["fields"]["meas"]
    assert bits["__type__"] == "BitArray" and bits["__value__"]["num_bits"] == 2


def test_estimator_result_round_trips() -> None:
    result = PrimitiveResult(
        [PubResult(DataBin(evs=np.array([0.5, -1.0]), stds=np.array([0.01, 0.02]), shape=(2,)), {"precision": 0.1})],
        metadata={},
    )
    decoded = round_trip(result)
    assert type(decoded[0]) is PubResult
    np.testing.assert_array_equal(decoded[0].data.evs, [0.5, -1.0])
    np.testing.assert_array_equal(decoded[0].data.stds, [0.01, 0.02])
    assert decoded[0].data.shape == (2,) and decoded[0].metadata == {"precision": 0.1}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (object(), "does not carry"),
        ({1: "x"}, "keys are strings"),
        ({"__type__": "x"}, "reserves"),
        (np.array([object()], dtype=object), "does not carry"),
    ],
)
def test_what_cannot_travel_is_refused_naming_it(value: object, message: str) -> None:
    with pytest.raises(qmux.InvalidInputError, match=message):
        _wire.encode(value)


def packed(data: bytes) -> str:
    return base64.standard_b64encode(zlib.compress(data)).decode()


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ({"__type__": "Nope", "__value__": 1}, "does not know"),
        ({"__type__": "ndarray"}, "exactly"),
        ({"__type__": "ndarray", "__value__": "!!!"}, "not valid base64"),
        ({"__type__": "ndarray", "__value__": base64.b64encode(b"plain").decode()}, "not zlib"),
        ({"__type__": "ndarray", "__value__": packed(b"not npy")}, "not a valid ndarray"),
        ({"__type__": "QuantumCircuit", "__value__": packed(b"QISKIT garbage")}, "not a valid QuantumCircuit"),
        ({"__type__": "complex", "__value__": "1+2j"}, r"\[real, imag\]"),
        ({"__type__": "float", "__value__": "big"}, "'nan', 'inf'"),
        ({"__type__": "BitArray", "__value__": {"array": 1}}, "num_bits"),
    ],
)
def test_malformed_typed_values_are_refused_with_where(tree: object, message: str) -> None:
    with pytest.raises(qmux.InvalidInputError, match=message):
        _wire.decode({"params": [tree]})
    with pytest.raises(qmux.InvalidInputError, match=r"\$\.params\[0\]"):
        _wire.decode({"params": [tree]})


def test_decompression_is_bounded() -> None:
    bomb = {"__type__": "ndarray", "__value__": packed(b"\0" * 1_000_000)}
    with pytest.raises(qmux.InvalidInputError, match="more than 1000 bytes"):
        _wire.decode(bomb, max_blob_bytes=1000)


def test_nesting_is_bounded() -> None:
    deep: Any = 1
    for _ in range(_wire.MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(qmux.InvalidInputError, match="nested more than"):
        _wire.decode(deep)
    with pytest.raises(qmux.InvalidInputError, match="nested more than"):
        _wire.encode(deep)


def test_plain_values_need_neither_numpy_nor_qiskit() -> None:
    code = (
        "import sys, qmux._wire as w; t = w.encode({'a': [1, 2.5], 'b': 1j}); assert w.decode(t)['b'] == 1j; "
        "assert 'numpy' not in sys.modules and 'qiskit' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    "error",
    [
        qmux.InvalidInputError("bad"),
        qmux.SessionNotFoundError("no session"),
        qmux.CapacityError("full"),
        qmux.SessionClosedError("closed", session_id="s", reason=qmux.ClosedReason.MAX_TIME),
        qmux.SessionClosedError("root", session_id="s", reason=qmux.ClosedReason.ROOT_JOB_CANCELLED, root_job_id="s"),
        qmux.JobFailedError("failed", job_id="j", reason="backend_error"),
        qmux.JobCancelledError("cancelled", job_id="j", reason="cancelled"),
        qmux.AuthenticationError("who"),
    ],
)
def test_errors_round_trip_to_the_same_type_and_fields(error: qmux.QmuxError) -> None:
    status, _ = _wire.error_status(error)
    back = _wire.error_from_wire(status, json.loads(json.dumps(_wire.error_to_wire(error))))
    assert type(back) is type(error) and str(back) == str(error)
    assert vars(back) == vars(error)


def test_an_error_keeps_its_cause_across_the_wire() -> None:
    error = qmux.JobFailedError("failed", job_id="j", reason="backend_error")
    error.__cause__ = RuntimeError("boom")
    back = _wire.error_from_wire(409, _wire.error_to_wire(error))
    assert isinstance(back.__cause__, RuntimeError) and str(back.__cause__) == "boom"
    closed = qmux.SessionClosedError("ran out", session_id="s", reason=qmux.ClosedReason.MAX_TIME)
    error.__cause__ = closed
    back = _wire.error_from_wire(409, _wire.error_to_wire(error))
    assert isinstance(back.__cause__, qmux.SessionClosedError) and back.__cause__.reason is qmux.ClosedReason.MAX_TIME


def test_unknown_error_bodies_map_by_status() -> None:
    assert type(_wire.error_from_wire(404, None)) is qmux.NotFoundError
    assert type(_wire.error_from_wire(429, {"error": "?"})) is qmux.CapacityError
    assert type(_wire.error_from_wire(502, "<html>")) is qmux.QmuxError


def test_every_job_status_has_one_ibm_word_and_the_words_are_the_declared_ones() -> None:
    """SPEC J1: both APIs and the remote client read job states from this one table."""
    assert set(_wire.JOB_STATES) == set(qmux.JobStatus)
    assert sorted(_wire.JOB_STATES.values()) == sorted(typing.get_args(_wire.JobStateName))
    assert len(set(_wire.JOB_STATES.values())) == len(_wire.JOB_STATES)  # so the client can map them back
