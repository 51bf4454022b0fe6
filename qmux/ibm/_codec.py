"""Job params in, results out, in the JSON encoding of qiskit-ibm-runtime's ``RuntimeEncoder``.

**Params** are decoded with `qmux._wire.decode`, not with the client's ``RuntimeDecoder``. The
layouts are the same (``QuantumCircuit`` as base64(zlib(QPY)), read back with qiskit's own
``qpy.load``; ``ndarray`` as base64(zlib(``.npy``))), but the server decodes what anyone may
send: ``_wire`` bounds nesting and every decompressed blob and knows only data types, while
``RuntimeDecoder`` is documented as meant for trusted input (unbounded zlib, class lookup by
name). The decoded params *are* the native inputs of the ``"sampler"`` and ``"estimator"``
programs (``qmux.primitives._pubs`` reads IBM's shape: ``pubs``, ``options``, ``version``), so
they go to the backend unchanged, through the same checks as a native job's.

**Results** are encoded with ``RuntimeEncoder`` itself, the reference for what the client's
``RuntimeDecoder`` reads back (``PrimitiveResult``, ``SamplerPubResult``, ``DataBin``,
``BitArray``, numpy arrays and scalars). The ``executor`` program's `ProgramResult` is written
in the result schema its decoder validates (``ibm_quantum_schemas``' executor v2.0 model, built
with that package's own tensor encoding), one chunk per item. qiskit-ibm-runtime is the ``ibm`` extra; it is
imported by `require_ibm_runtime`, which the app calls once at start, on the Trio thread:
importing qiskit there first also avoids the trap of qiskit 2.6's ``qpy.load`` crashing when
qiskit was first imported in a worker thread.
"""

from __future__ import annotations

import importlib
import json
from typing import Any, Final

from .. import _wire
from .._core import QiskitNotInstalledError, QmuxError
from ..backends._program import ProgramResult

__all__ = ["INSTALL_HINT", "decode_params", "encode_result", "require_ibm_runtime"]

INSTALL_HINT: Final = "pip install 'qmux[ibm]'"


def require_ibm_runtime() -> None:
    """Import qiskit and qiskit-ibm-runtime's JSON codec now, or raise `QiskitNotInstalledError`."""
    try:
        importlib.import_module("qiskit")
        importlib.import_module("qiskit_ibm_runtime.json")
    except ImportError as exc:
        raise QiskitNotInstalledError(
            f"serving IBM's Runtime API (qmux serve --ibm-compat) needs qiskit-ibm-runtime, which is not "
            f"installed ({exc.name} is missing); install it with: {INSTALL_HINT}"
        ) from exc


def decode_params(params: object, *, max_blob_bytes: int) -> Any:
    """A job's ``params`` as the backend's programs read them; `InvalidInputError` names what is wrong."""
    return _wire.decode(params, max_blob_bytes=max_blob_bytes)


def encode_result(value: object) -> bytes:
    """`value` as the text ``RuntimeDecoder`` turns back into the same object.

    A value ``RuntimeEncoder`` cannot write (a custom program's arbitrary object) is a
    `QmuxError` that names its type: the job ran, but its result cannot travel to this client.
    """
    if isinstance(value, ProgramResult):
        return _program_result(value)
    encoder: type[json.JSONEncoder] = importlib.import_module("qiskit_ibm_runtime.json").RuntimeEncoder
    try:
        return json.dumps(value, cls=encoder).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise QmuxError(
            f"the job's result, a {type(value).__module__}.{type(value).__qualname__}, cannot be written in "
            f"qiskit-ibm-runtime's JSON encoding: {exc}"
        ) from exc


def _program_result(result: ProgramResult) -> bytes:
    """An executor job's result as ``QuantumProgramResultModel`` (schema v2.0) JSON."""
    import numpy as np
    from ibm_quantum_schemas.common import CompressedTensorModel  # type: ignore[import-untyped]
    from ibm_quantum_schemas.executor.version_2_0 import models  # type: ignore[import-untyped]

    def tree(value: object) -> object:
        if isinstance(value, dict):
            return {key: tree(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [tree(item) for item in value]
        if isinstance(value, np.ndarray):
            return CompressedTensorModel.from_numpy(value)
        return value

    parts = [
        models.ChunkPart(
            idx_item=index,
            size=item.size,
            permutation=list(range(len(item.shape))),
            element_range=(0, item.size, 1),
        )
        for index, item in enumerate(result.items)
    ]
    model = models.QuantumProgramResultModel(
        data=[
            models.QuantumProgramResultItemModel(
                results={name: CompressedTensorModel.from_numpy(array) for name, array in item.results.items()},
                metadata=models.ItemMetadataModel(),
            )
            for item in result.items
        ],
        metadata=models.MetadataModel(
            chunk_timing=[models.ChunkSpan(start=result.started, stop=result.finished, parts=parts)]
        ),
        passthrough_data=tree(result.passthrough_data),
        semantic_role=result.semantic_role,
    )
    text: str = model.model_dump_json()
    return text.encode("utf-8")
