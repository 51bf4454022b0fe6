"""Session ids a client proposes: derived per tenant, so that no tenant can name another's.

A client that opens a session over HTTP wants its id before the round trip (so that
``Session(...)`` stays synchronous, and a retried create finds the session the first try made).
If it proposed the id itself, two tenants could propose the same one, and whatever the server
answered the second (a refusal, a different id) would tell it that the id is taken: an oracle
on other tenants' ids. So a client proposes a *seed*, and the session's id is derived from the
seed and the digest of the tenant's token (`token_digest`, what the server keeps of it):
the client computes the same id locally, and two tenants' ids cannot meet (they would need
the same SHA-256 prefix from different digests). The server never compares a seed with
another tenant's ids: there is nothing to learn.
"""

from __future__ import annotations

import hashlib
from typing import Final

__all__ = ["SEED_PATTERN", "session_id_from_seed", "token_digest"]

#: a session id seed: 20 lowercase hex characters (a client draws it like an id, `qmux._core.new_id`)
SEED_PATTERN: Final = "^[0-9a-f]{20}$"
_DOMAIN: Final = b"qmux session id\x00"
_ID_HEX: Final = 20


def token_digest(token: str) -> str:
    """The hex SHA-256 of a bearer token: what the server keeps of it (``token_sha256``)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def session_id_from_seed(token_sha256: str, seed: str) -> str:
    """The id of the session a tenant (by its token's digest) opens with `seed`: 20 hex characters."""
    material = _DOMAIN + token_sha256.encode("ascii") + b"\x00" + seed.encode("ascii")
    return hashlib.sha256(material).hexdigest()[:_ID_HEX]
