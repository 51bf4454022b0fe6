"""Values on the wire: job inputs and results as JSON trees, both ways.

Plain JSON stays plain: ``None``, booleans, integers, finite floats, strings, lists (tuples
become lists) and objects with string keys. Everything else is a *typed object*
``{"__type__": NAME, "__value__": ...}`` with the names and layouts of qiskit-ibm-runtime's
``RuntimeEncoder`` / ``RuntimeDecoder``, so that IBM's own client reads what qmux writes:
============================  ===============================================================
``__type__``                  ``__value__``
============================  ===============================================================
``complex``                   ``[real, imag]``
``set``                       a list of the members
``datetime``                  an ISO-8601 string
``float``                     ``"nan"``, ``"inf"`` or ``"-inf"`` (JSON has no such numbers; qmux's own)
``ndarray``                   base64(zlib(numpy ``.npy`` bytes)); an object array is a list
``QuantumCircuit``            base64(zlib(QPY bytes))
``ObservablesArray``          its ``tolist()``: Pauli-string -> coefficient mappings
``BitArray``                  ``{"array": ndarray, "num_bits": int}``
``DataBin``                   ``{"field_names": [...], "shape": [...], "fields": {name: value}}``
``PubResult``                 ``{"data": DataBin, "metadata": {...}}``
``SamplerPubResult``          ``{"data": DataBin, "metadata": {...}}``
``PrimitiveResult``           ``{"pub_results": [...], "metadata": {...}}``
============================  ===============================================================

numpy and qiskit stay optional: they are imported only to decode a value that names one of
their types, and a value can only *be* one of their objects if its module is already imported.
Decoding is bounded (nesting depth, and what the blobs of one tree decompress to, all
together), since the server decodes what any client sends: a few hundred kilobytes of
compressed zeros must not become gigabytes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
import math
import sys
import zlib
from collections.abc import Callable, Mapping
from typing import Any, Final

from .._core import InvalidInputError

__all__ = ["MAX_BLOB_BYTES", "MAX_DEPTH", "decode", "decode_fields", "encode"]

#: deepest nesting of lists and objects `decode` accepts
MAX_DEPTH: Final = 64
#: the most the blobs (arrays, circuits) of one tree may decompress to, all together, by default
MAX_BLOB_BYTES: Final = 256 * 1024 * 1024

_TYPE, _VALUE = "__type__", "__value__"
#: a blob is inflated this much at a time, checked against the limit after each piece
_INFLATE_PIECE: Final = 1024 * 1024


# -- encoding ----------------------------------------------------------------------------------------


def encode(value: object) -> Any:
    """`value` as a JSON tree (see the module docstring); `InvalidInputError` names what cannot go."""
    return _encode(value, "$", 0)


def _encode(value: object, where: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise InvalidInputError(f"value at {where} is nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return _typed("float", "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, (list, tuple)):
        return [_encode(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(
                    f"value at {where} has a key {key!r} of type {type(key).__name__}; JSON object keys are strings"
                )
            if key == _TYPE:
                raise InvalidInputError(f"value at {where} uses the key {_TYPE!r}, which the wire encoding reserves")
            out[key] = _encode(item, f"{where}.{key}", depth + 1)
        return out
    if isinstance(value, complex):
        return _typed("complex", [value.real, value.imag])
    if isinstance(value, (set, frozenset)):
        return _typed("set", [_encode(item, f"{where}[]", depth + 1) for item in value])
    if isinstance(value, dt.datetime):
        return _typed("datetime", value.isoformat())
    encoded = _encode_qiskit(value, where, depth) if "qiskit" in sys.modules else None
    if encoded is None and "numpy" in sys.modules:
        encoded = _encode_numpy(value, where, depth)
    if encoded is None:
        raise InvalidInputError(
            f"value at {where} is a {type(value).__module__}.{type(value).__qualname__}, which the wire "
            "encoding does not carry; use JSON data, numpy arrays, or qiskit circuits and primitive results"
        )
    return encoded


def _encode_numpy(value: object, where: str, depth: int) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return _typed("ndarray", _encode(value.tolist(), where, depth + 1))
        return _typed("ndarray", _pack(lambda buffer: np.save(buffer, value, allow_pickle=False)))
    if isinstance(value, np.generic):  # numpy scalars become their Python values
        return _encode(value.item(), where, depth)
    return None


def _encode_qiskit(value: object, where: str, depth: int) -> Any:
    from qiskit import QuantumCircuit, qpy
    from qiskit.primitives import BitArray, DataBin, PrimitiveResult, PubResult, SamplerPubResult
    from qiskit.primitives.containers.observables_array import ObservablesArray

    def nested(item: object, name: str) -> Any:
        return _encode(item, f"{where}.{name}", depth + 1)

    if isinstance(value, QuantumCircuit):
        return _typed("QuantumCircuit", _pack(lambda buffer: qpy.dump(value, buffer)))
    if isinstance(value, PrimitiveResult):
        return _typed(
            "PrimitiveResult",
            {"pub_results": nested(list(value), "pub_results"), "metadata": nested(value.metadata, "metadata")},
        )
    if isinstance(value, (SamplerPubResult, PubResult)):  # SamplerPubResult first: it is a PubResult
        name = "SamplerPubResult" if isinstance(value, SamplerPubResult) else "PubResult"
        return _typed(name, {"data": nested(value.data, "data"), "metadata": nested(value.metadata, "metadata")})
    if isinstance(value, DataBin):
        return _typed(
            "DataBin",
            {
                "field_names": list(value),
                "shape": list(value.shape),
                "fields": {name: nested(item, name) for name, item in value.items()},
            },
        )
    if isinstance(value, BitArray):
        return _typed("BitArray", {"array": nested(value.array, "array"), "num_bits": value.num_bits})
    if isinstance(value, ObservablesArray):
        return _typed("ObservablesArray", nested(value.tolist(), "observables"))
    return None


def _typed(name: str, value: Any) -> dict[str, Any]:
    return {_TYPE: name, _VALUE: value}


def _pack(write: Callable[[io.BytesIO], object]) -> str:
    with io.BytesIO() as buffer:
        write(buffer)
        data = buffer.getvalue()
    return base64.standard_b64encode(zlib.compress(data)).decode("ascii")


# -- decoding ----------------------------------------------------------------------------------------


def decode(tree: Any, *, max_blob_bytes: int = MAX_BLOB_BYTES) -> Any:
    """The value a JSON tree from `encode` stands for; `InvalidInputError` says what is wrong where.

    `max_blob_bytes` bounds what all the blobs of `tree` decompress to, together.
    """
    return _Decoder(max_blob_bytes).decode(tree, "$", 0)


def decode_fields(fields: Mapping[str, Any], *, max_blob_bytes: int = MAX_BLOB_BYTES) -> dict[str, Any]:
    """Several trees (a request's ``params`` and ``options``), each as `decode` reads it, under one
    limit: `max_blob_bytes` bounds what all their blobs decompress to, together. Errors name the field."""
    decoder = _Decoder(max_blob_bytes)
    return {name: decoder.decode(tree, name, 0) for name, tree in fields.items()}


class _Decoder:
    __slots__ = ("_left", "_max_blob")

    def __init__(self, max_blob_bytes: int) -> None:
        self._max_blob = max_blob_bytes
        self._left = max_blob_bytes

    def decode(self, tree: Any, where: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise InvalidInputError(f"value at {where} is nested more than {MAX_DEPTH} levels deep")
        if tree is None or isinstance(tree, (bool, int, float, str)):
            return tree
        if isinstance(tree, list):
            return [self.decode(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(tree)]
        if not isinstance(tree, dict):
            raise InvalidInputError(f"value at {where} is a {type(tree).__name__}, which is not JSON")
        if _TYPE not in tree:
            return {key: self.decode(item, f"{where}.{key}", depth + 1) for key, item in tree.items()}
        name = tree[_TYPE]
        if set(tree) != {_TYPE, _VALUE} or not isinstance(name, str):
            raise InvalidInputError(
                f"typed value at {where} must be exactly {{{_TYPE!r}: <name>, {_VALUE!r}: <value>}}; got keys "
                f"{sorted(tree)}"
            )
        decoder = _DECODERS.get(name)
        if decoder is None:
            raise InvalidInputError(
                f"typed value at {where} names {_TYPE}={name!r}, which qmux does not know; known: "
                f"{', '.join(sorted(_DECODERS))}"
            )
        try:
            return decoder(self, tree[_VALUE], f"{where}<{name}>", depth + 1)
        except InvalidInputError:
            raise
        except ImportError as exc:
            raise InvalidInputError(
                f"value at {where} is a {name}, and decoding it needs {exc.name or 'an optional package'}: "
                "pip install 'qmux[qiskit]'"
            ) from exc
        except Exception as exc:  # whatever numpy or qpy raise on a corrupt blob
            raise InvalidInputError(f"value at {where} is not a valid {name}: {type(exc).__name__}: {exc}") from exc

    def blob(self, value: Any, where: str) -> io.BytesIO:
        """A base64(zlib(...)) string as a readable buffer, refusing more than the blob limit."""
        if not isinstance(value, str):
            raise InvalidInputError(f"value at {where} must be a base64 string, not {type(value).__name__}")
        try:
            compressed = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInputError(f"value at {where} is not valid base64: {exc}") from exc
        inflater = zlib.decompressobj()
        out = io.BytesIO()
        pending = compressed
        try:
            while True:  # a piece at a time: past the limit, refused having held the limit at most
                piece = inflater.decompress(pending, _INFLATE_PIECE)
                out.write(piece)
                if out.tell() > self._left:
                    raise InvalidInputError(
                        f"value at {where} decompresses to more than {self._left} bytes, what is left of the limit: "
                        f"the arrays and circuits of one value may decompress to {self._max_blob} bytes, all together"
                    )
                pending = inflater.unconsumed_tail
                if not pending and len(piece) < _INFLATE_PIECE:  # all read, and all the output it holds
                    break
        except zlib.error as exc:
            raise InvalidInputError(f"value at {where} is not zlib data: {exc}") from exc
        self._left -= out.tell()
        out.seek(0)
        return out

    def fields(self, value: Any, where: str, required: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict) or not set(required) <= set(value):
            raise InvalidInputError(f"value at {where} must be an object with the keys {', '.join(required)}")
        return value


def _decode_float(d: _Decoder, value: Any, where: str, depth: int) -> float:
    if value not in ("nan", "inf", "-inf"):
        raise InvalidInputError(f"value at {where} must be 'nan', 'inf' or '-inf', not {value!r}")
    return float(value)


def _decode_complex(d: _Decoder, value: Any, where: str, depth: int) -> complex:
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(x, (int, float)) for x in value)) or any(
        isinstance(x, bool) for x in value
    ):
        raise InvalidInputError(f"value at {where} must be [real, imag], not {value!r}")
    return complex(value[0], value[1])


def _decode_set(d: _Decoder, value: Any, where: str, depth: int) -> set[Any]:
    if not isinstance(value, list):
        raise InvalidInputError(f"value at {where} must be a list of the set's members")
    return set(d.decode(value, where, depth))


def _decode_datetime(d: _Decoder, value: Any, where: str, depth: int) -> dt.datetime:
    if not isinstance(value, str):
        raise InvalidInputError(f"value at {where} must be an ISO-8601 string")
    return dt.datetime.fromisoformat(value)


def _decode_ndarray(d: _Decoder, value: Any, where: str, depth: int) -> Any:
    import numpy as np

    if isinstance(value, list):  # an object array travels as nested lists
        return np.array(d.decode(value, where, depth), dtype=object)
    return np.load(d.blob(value, where), allow_pickle=False)


def _decode_circuit(d: _Decoder, value: Any, where: str, depth: int) -> Any:
    from qiskit import qpy

    circuits = qpy.load(d.blob(value, where))
    if len(circuits) != 1:
        raise InvalidInputError(f"value at {where} holds {len(circuits)} circuits; a QuantumCircuit is one")
    return circuits[0]


def _decode_observables(d: _Decoder, value: Any, where: str, depth: int) -> Any:
    from qiskit.primitives.containers.observables_array import ObservablesArray

    return ObservablesArray(d.decode(value, where, depth))


def _decode_bit_array(d: _Decoder, value: Any, where: str, depth: int) -> Any:
    from qiskit.primitives import BitArray

    fields = d.fields(value, where, ("array", "num_bits"))
    return BitArray(d.decode(fields["array"], f"{where}.array", depth), fields["num_bits"])


def _decode_data_bin(d: _Decoder, value: Any, where: str, depth: int) -> Any:
    from qiskit.primitives import DataBin

    fields = d.fields(value, where, ("fields",))
    shape = fields.get("shape") or ()
    items = d.decode(fields["fields"], f"{where}.fields", depth)
    if not isinstance(items, dict) or not isinstance(shape, list | tuple):
        raise InvalidInputError(f"value at {where} must have an object 'fields' and a list 'shape'")
    return DataBin(shape=tuple(shape), **items)


def _decode_pub_result(d: _Decoder, value: Any, where: str, depth: int) -> Any:
    from qiskit.primitives import PubResult

    fields = d.fields(value, where, ("data",))
    return PubResult(d.decode(fields["data"], f"{where}.data", depth), d.decode(fields.get("metadata"), where, depth))


def _decode_sampler_pub_result(d: _Decoder, value: Any, where: str, depth: int) -> Any:
    from qiskit.primitives import SamplerPubResult

    fields = d.fields(value, where, ("data",))
    return SamplerPubResult(
        d.decode(fields["data"], f"{where}.data", depth), d.decode(fields.get("metadata"), where, depth)
    )


def _decode_primitive_result(d: _Decoder, value: Any, where: str, depth: int) -> Any:
    from qiskit.primitives import PrimitiveResult

    fields = d.fields(value, where, ("pub_results",))
    return PrimitiveResult(
        d.decode(fields["pub_results"], f"{where}.pub_results", depth), d.decode(fields.get("metadata"), where, depth)
    )


_DECODERS: Final[dict[str, Callable[[_Decoder, Any, str, int], Any]]] = {
    "float": _decode_float,
    "complex": _decode_complex,
    "set": _decode_set,
    "datetime": _decode_datetime,
    "ndarray": _decode_ndarray,
    "QuantumCircuit": _decode_circuit,
    "ObservablesArray": _decode_observables,
    "BitArray": _decode_bit_array,
    "DataBin": _decode_data_bin,
    "PubResult": _decode_pub_result,
    "SamplerPubResult": _decode_sampler_pub_result,
    "PrimitiveResult": _decode_primitive_result,
}
