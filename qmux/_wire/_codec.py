"""What crosses the wire between ``qmux serve`` and ``qmux.connect``: values, errors, names.

**Values** (job inputs and results) travel as JSON trees. Plain JSON stays plain: ``None``,
booleans, integers, finite floats, strings, lists (tuples become lists) and objects with string
keys. Everything else is a *typed object* ``{"__type__": NAME, "__value__": ...}`` with the names
and layouts of qiskit-ibm-runtime's ``RuntimeEncoder`` / ``RuntimeDecoder``, so that a later
front door can serve IBM's own client:

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
Decoding is bounded (nesting depth, and the size of every decompressed blob), since the
server decodes what any client sends.

**Errors** travel as ``{"error": {"code", "message", "type", ...}}`` (IBM's ``error.message`` and
``error.code``, plus the qmux exception's name and fields) with the HTTP status of `error_status`;
`error_from_wire` rebuilds the same qmux exception on the client.

**Names**: the server speaks IBM's words where IBM has them (job states ``Completed``, session
``max_ttl``); the tables here translate both ways, so each side has one source of truth.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import datetime as dt
import io
import math
import sys
import zlib
from collections.abc import Callable, Mapping
from typing import Any, Final

from .._core import (
    AuthenticationError,
    BackendNotFoundError,
    BackendUnavailableError,
    CapacityError,
    ClosedReason,
    InvalidInputError,
    JobCancelledError,
    JobError,
    JobFailedError,
    JobNotFoundError,
    JobStatus,
    NotFoundError,
    QmuxError,
    ServiceClosedError,
    SessionClosedError,
    SessionCrashedError,
    SessionNotFoundError,
    StorageError,
)

__all__ = [
    "JOB_STATES",
    "MAX_BLOB_BYTES",
    "MAX_DEPTH",
    "SESSION_FIELDS",
    "decode",
    "encode",
    "error_from_wire",
    "error_status",
    "error_to_wire",
]

#: deepest nesting of lists and objects `decode` accepts
MAX_DEPTH: Final = 64
#: largest decompressed blob (one array or one circuit) `decode` accepts, in bytes
MAX_BLOB_BYTES: Final = 256 * 1024 * 1024

_TYPE, _VALUE = "__type__", "__value__"


# -- values: encoding ------------------------------------------------------------------------------


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


# -- values: decoding ------------------------------------------------------------------------------


def decode(tree: Any, *, max_blob_bytes: int = MAX_BLOB_BYTES) -> Any:
    """The value a JSON tree from `encode` stands for; `InvalidInputError` says what is wrong where."""
    return _Decoder(max_blob_bytes).decode(tree, "$", 0)


class _Decoder:
    __slots__ = ("_max_blob",)

    def __init__(self, max_blob_bytes: int) -> None:
        self._max_blob = max_blob_bytes

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
        try:
            data = inflater.decompress(compressed, self._max_blob)
        except zlib.error as exc:
            raise InvalidInputError(f"value at {where} is not zlib data: {exc}") from exc
        if inflater.unconsumed_tail:
            raise InvalidInputError(f"value at {where} decompresses to more than {self._max_blob} bytes, the limit")
        return io.BytesIO(data)

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


# -- names -----------------------------------------------------------------------------------------

#: qmux's job status -> the ``state.status`` word of IBM's job document
JOB_STATES: Final[Mapping[JobStatus, str]] = {
    JobStatus.QUEUED: "Queued",
    JobStatus.RUNNING: "Running",
    JobStatus.DONE: "Completed",
    JobStatus.ERROR: "Failed",
    JobStatus.CANCELLED: "Cancelled",
}

#: the keys of ``Session.details()`` (SPEC S18) -> the names IBM's session document uses
SESSION_FIELDS: Final[Mapping[str, str]] = {
    "interactive_timeout": "interactive_ttl",
    "max_time": "max_ttl",
    "active_timeout": "active_ttl",
    "usage_time": "elapsed_time",
}


# -- errors ----------------------------------------------------------------------------------------

#: most specific first: the first class an error is an instance of gives its status and code
_ERRORS: Final[tuple[tuple[type[QmuxError], int, str], ...]] = (
    (AuthenticationError, 401, "unauthorized"),
    (InvalidInputError, 422, "invalid_input"),
    (BackendNotFoundError, 404, "backend_not_found"),
    (SessionNotFoundError, 404, "session_not_found"),
    (JobNotFoundError, 404, "job_not_found"),
    (NotFoundError, 404, "not_found"),
    (BackendUnavailableError, 409, "backend_unavailable"),
    (SessionCrashedError, 409, "session_crashed"),
    (SessionClosedError, 409, "session_closed"),
    (JobCancelledError, 409, "job_cancelled"),
    (JobFailedError, 409, "job_failed"),
    (CapacityError, 429, "capacity"),
    (ServiceClosedError, 503, "service_closed"),
    (StorageError, 503, "storage"),
)
_BY_NAME: Final[dict[str, type[QmuxError]]] = {cls.__name__: cls for cls, _, _ in _ERRORS} | {"QmuxError": QmuxError}


def error_status(error: QmuxError) -> tuple[int, str]:
    """The HTTP status and the error code that `error` answers with."""
    for cls, status, code in _ERRORS:
        if isinstance(error, cls):
            return status, code
    return 500, "error"


def error_to_wire(error: QmuxError, *, code: str | None = None) -> dict[str, Any]:
    """The JSON error body for `error`: what went wrong, and the fields to rebuild it from."""
    body: dict[str, Any] = {
        "code": code or error_status(error)[1],
        "message": str(error),
        "type": next((cls.__name__ for cls, _, _ in _ERRORS if type(error) is cls), "QmuxError"),
    }
    if isinstance(error, SessionClosedError):
        body.update(session_id=error.session_id, reason=error.reason.value, root_job_id=error.root_job_id)
    if isinstance(error, JobError):
        body.update(job_id=error.job_id, reason=error.reason)
    cause = error.__cause__
    if isinstance(cause, QmuxError) and cause is not error:  # e.g. the SessionClosedError behind a failed job
        body["cause"] = {key: value for key, value in error_to_wire(cause)["error"].items() if key != "cause"}
    elif isinstance(cause, Exception):  # a backend's own error, kept as the job error's cause (SPEC J3)
        body["cause"] = {"type": type(cause).__name__, "message": str(cause)}
    return {"error": body}


def error_from_wire(status: int, body: object) -> QmuxError:
    """The qmux exception an error response stands for; unknown shapes map by status.

    A cause travels as its type's name and message; it is rebuilt when the type is a qmux
    error or a built-in exception, so ``error.__cause__`` reads as it does in process.
    """
    detail = body.get("error") if isinstance(body, dict) else None
    if not isinstance(detail, dict):
        detail = {}
    error = _error_from_detail(status, detail)
    error.__cause__ = _cause_from_wire(detail.get("cause"))
    return error


def _cause_from_wire(cause: object) -> BaseException | None:
    if not isinstance(cause, dict):
        return None
    name, message = str(cause.get("type")), str(cause.get("message", ""))
    if name in _BY_NAME:
        return _error_from_detail(500, cause)
    cls: object = getattr(builtins, name, None)
    if not isinstance(cls, type) or not issubclass(cls, Exception):
        return None
    try:
        return cls(message)
    except Exception:  # a built-in that wants other arguments
        return None


def _error_from_detail(status: int, detail: dict[str, Any]) -> QmuxError:
    message = str(detail.get("message") or f"the server answered HTTP {status}")
    cls = _BY_NAME.get(str(detail.get("type")))
    if cls is None:
        cls = _FALLBACK.get(status, QmuxError)
    try:
        if issubclass(cls, SessionClosedError):
            reason = ClosedReason(detail.get("reason", ClosedReason.CLOSED.value))
            root = detail.get("root_job_id")
            return cls(
                message,
                session_id=str(detail.get("session_id", "")),
                reason=reason,
                root_job_id=str(root) if root is not None else None,
            )
        if issubclass(cls, JobError):
            reason_text = detail.get("reason")
            return cls(
                message,
                job_id=str(detail.get("job_id", "")),
                reason=str(reason_text) if reason_text is not None else None,
            )
    except ValueError:  # an unknown closed reason: keep the message, lose the detail
        return QmuxError(message)
    return cls(message)


_FALLBACK: Final[dict[int, type[QmuxError]]] = {
    400: InvalidInputError,
    401: AuthenticationError,
    404: NotFoundError,
    413: InvalidInputError,
    415: InvalidInputError,
    422: InvalidInputError,
    429: CapacityError,
    503: ServiceClosedError,
}
