"""The wire: how values, errors and names travel between qmux processes, written once.

The native API, the IBM-compatible API and the remote client all encode through here, so a
value or an error reads the same on both sides of every connection.
"""

from __future__ import annotations

from ._codec import (
    JOB_STATES,
    MAX_BLOB_BYTES,
    MAX_DEPTH,
    SESSION_FIELDS,
    decode,
    encode,
    error_from_wire,
    error_status,
    error_to_wire,
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
