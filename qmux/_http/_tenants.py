"""Tenants and their bearer tokens: who a request is from, on both front doors.

A tenant is a name and the SHA-256 of its token: the server never needs the token itself, so a
config file can hold digests only. A request's token is hashed and looked up; comparing digests
of a secret (not the secret, byte by byte) gives a timing side channel nothing to work with.

Who owns a session or a job is the core's `owner` tag (kept in the journal, so it survives a
restart): the front doors open them with the tenant's name, and `ServiceView` checks it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, final

from attrs import field, frozen

from .._core import InvalidInputError, matches
from .._wire import token_digest

__all__ = ["TOKEN_SHA256", "Tenant", "TokenAuth", "check_token", "token_digest"]

_NAME = matches(
    re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"),
    "1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit",
)
#: the value is never shown: a token pasted where its digest belongs must not reach a log
_DIGEST = matches(
    re.compile(r"[0-9a-f]{64}"), "64 lowercase hex characters: the SHA-256 of the token", show_value=False
)
#: the rule of a token's digest wherever a config file holds one (a tenant's, the metrics token)
TOKEN_SHA256: Final = _DIGEST
_MIN_TOKEN = 8


def check_token(token: object) -> str:
    """A bearer token: 8 or more characters, no spaces around it. Never shown in the message."""
    if not isinstance(token, str) or len(token) < _MIN_TOKEN or token != token.strip():
        raise InvalidInputError(f"token must be a string of {_MIN_TOKEN} or more characters, no spaces around it")
    return token


@frozen
class Tenant:
    """One tenant: a name, and the digest of the bearer token that identifies it."""

    name: str = field(validator=_NAME)
    token_sha256: str = field(validator=_DIGEST, repr=False)

    @classmethod
    def from_token(cls, name: str, token: str) -> Tenant:
        """A tenant from its plain token (tests, development, ``QMUX_TOKEN``)."""
        try:
            digest = token_digest(check_token(token))
        except InvalidInputError as exc:
            raise InvalidInputError(f"tenant {name!r}: {exc}") from None
        return cls(name, digest)


@final
class TokenAuth:
    """Maps ``Authorization: Bearer <token>`` to a tenant name."""

    __slots__ = ("_by_digest",)

    def __init__(self, tenants: Iterable[Tenant]) -> None:
        by_digest: dict[str, str] = {}
        names: set[str] = set()
        for tenant in tenants:
            if tenant.name in names:
                raise InvalidInputError(f"two tenants are named {tenant.name!r}; tenant names must be unique")
            if tenant.token_sha256 in by_digest:
                raise InvalidInputError(
                    f"tenants {by_digest[tenant.token_sha256]!r} and {tenant.name!r} have the same token; "
                    "each tenant needs its own"
                )
            names.add(tenant.name)
            by_digest[tenant.token_sha256] = tenant.name
        if not by_digest:
            raise InvalidInputError("the server needs at least one tenant: add a [[tenants]] table to the config")
        self._by_digest = by_digest

    def tenant(self, authorization: str | None) -> str | None:
        """The tenant a header value names, or ``None`` if it names none."""
        if authorization is None:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        return self._by_digest.get(token_digest(token))
