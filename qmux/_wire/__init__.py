"""The wire: how values, errors and names travel between qmux processes, written once.

The native API, the IBM-compatible API and the remote client all encode through here, so a
value or an error reads the same on both sides of every connection. Four small modules:
`_values` (job inputs and results as JSON trees), `_errors` (a qmux exception as a status and a
body, and back), `_names` (IBM's words for qmux's states and fields), `_ids` (token digests,
and the session ids a client derives from a seed). Nothing here needs more
than the standard library and the core: the remote client imports it without the server extra.
"""

from __future__ import annotations

from ._errors import error_from_wire, error_status, error_to_wire
from ._ids import SEED_PATTERN, session_id_from_seed, token_digest
from ._names import JOB_STATES, SESSION_FIELDS, JobStateName
from ._values import MAX_BLOB_BYTES, MAX_DEPTH, decode, decode_fields, encode

__all__ = [
    "JOB_STATES",
    "MAX_BLOB_BYTES",
    "MAX_DEPTH",
    "SEED_PATTERN",
    "SESSION_FIELDS",
    "JobStateName",
    "decode",
    "decode_fields",
    "encode",
    "error_from_wire",
    "error_status",
    "error_to_wire",
    "session_id_from_seed",
    "token_digest",
]
