"""IBM Cloud IAM, as far as the client needs it: API keys in, short-lived bearer tokens out.

qiskit-ibm-runtime never sends its API key to the Runtime API. It trades it at
``{IAM_URL}/identity/token`` for an access token (a JWT whose ``exp`` and ``iat`` it reads to
know when to trade again), and sends ``Authorization: Bearer <access token>`` on every call.
Here the API key is a tenant's qmux token, checked exactly as the native API checks it
(`TokenAuth`: SHA-256 digests), so one tenant has one credential for both front doors and
tenants stay as isolated through IBM's client as through qmux's.

The access token is a real HS256 JWT naming the tenant, signed with a key drawn at random
when the server starts: it cannot be forged or altered, and needs no server-side table. A
restart of the server therefore invalidates the tokens it issued (the client then gets 401,
``IBMNotAuthorizedError``; a new ``QiskitRuntimeService()`` trades its key again). The
tenant's own token is accepted too: as a bearer token, so that ``curl`` works without the
trade, and as ``Authorization: apikey <key>``, which is what the client falls back to sending
when its token call fails.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Final, final

from attrs import frozen

from .._http import Tenant, TokenAuth

__all__ = ["APIKEY_GRANT", "IamTokens", "IssuedToken"]

#: the only grant the client uses (IAM's API-key grant)
APIKEY_GRANT: Final = "urn:ibm:params:oauth:grant-type:apikey"
_ISSUER: Final = "qmux"
_HEADER: Final = {"alg": "HS256", "typ": "JWT"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@frozen
class IssuedToken:
    """An access token and its lifetime, in POSIX seconds."""

    token: str
    issued_at: int
    expires_at: int


@final
class IamTokens:
    """Trades tenants' API keys for signed access tokens, and maps a bearer token to its tenant."""

    __slots__ = ("_auth", "_key", "_lifetime", "_now", "_tenants")

    def __init__(
        self,
        tenants: Iterable[Tenant],
        *,
        lifetime: int = 3600,
        key: bytes | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        tenants = tuple(tenants)
        self._auth = TokenAuth(tenants)
        self._tenants = frozenset(tenant.name for tenant in tenants)
        self._key = key if key is not None else secrets.token_bytes(32)
        self._lifetime = lifetime
        self._now = now

    def issue(self, apikey: str) -> IssuedToken | None:
        """A fresh access token for the tenant whose token `apikey` is; ``None`` if it is none's."""
        tenant = self._auth.tenant(f"Bearer {apikey}")
        if tenant is None:
            return None
        issued = int(self._now())
        expires = issued + self._lifetime
        claims = {"iss": _ISSUER, "sub": tenant, "iat": issued, "exp": expires, "jti": secrets.token_hex(8)}
        signing_input = f"{_b64(json.dumps(_HEADER).encode())}.{_b64(json.dumps(claims).encode())}"
        return IssuedToken(f"{signing_input}.{_b64(self._sign(signing_input))}", issued, expires)

    def tenant(self, authorization: str | None) -> str | None:
        """The tenant an ``Authorization`` header names: a valid, unexpired access token, or a tenant's token."""
        if authorization is None:
            return None
        scheme, _, credential = authorization.strip().partition(" ")
        scheme, credential = scheme.lower(), credential.strip()
        if scheme not in ("bearer", "apikey") or not credential:
            return None
        if scheme == "bearer" and credential.count(".") == 2:
            return self._verify(credential)
        return self._auth.tenant(f"Bearer {credential}")

    def _sign(self, signing_input: str) -> bytes:
        return hmac.new(self._key, signing_input.encode("ascii"), hashlib.sha256).digest()

    def _verify(self, token: str) -> str | None:
        signing_input, _, signature = token.rpartition(".")
        try:
            expected = self._sign(signing_input)
            if not hmac.compare_digest(expected, _unb64(signature)):
                return None
            claims = json.loads(_unb64(signing_input.partition(".")[2]))
        except (ValueError, UnicodeError, binascii.Error):
            return None
        if not isinstance(claims, dict) or claims.get("iss") != _ISSUER:
            return None
        tenant, expires = claims.get("sub"), claims.get("exp")
        if not isinstance(expires, int) or expires <= self._now() or tenant not in self._tenants:
            return None
        return str(tenant)
