"""Who is let in, and how many at once: per-tenant admission, and the throttle on failed authentication.

Rule of thumb 1, bounded per tenant: one tenant's load or abuse must not change another tenant's
answers. `Admission` admits an authenticated request only while its tenant is under its rate (a
token bucket: 429 with Retry-After past it) and under its in-flight limit (503 with Retry-After),
and while the server as a whole is under its own in-flight limit; a tenant that floods the server
is refused at the door, before its body is read, and the others see no difference. A 429 or 503
with Retry-After from here means the request was refused before anything happened, so a client
may send it again, whatever its method.

`AuthThrottle` bounds failed authentication per client address (a token bucket per address,
429 with Retry-After once it is empty). A throttled address is answered before its credential
is checked, so a flood of guesses learns nothing more from it; but a credential that was
accepted from that address before goes on being served: valid tokens are never slowed. Its
table of addresses is bounded (least recently seen go first), so that spraying addresses
costs it memory it does not have to give.

Both read the time from Trio's clock: tests run them on the virtual clock.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, final

import structlog
import trio
from attrs import define, field

from .._core import AuthenticationError, CapacityError
from ._limits import HttpLimits
from ._messages import HttpError

__all__ = ["MAX_ADDRESSES", "Admission", "AuthThrottle", "TokenBucket", "address_key"]

_log = structlog.get_logger("qmux.http")

#: client addresses the failed-authentication throttle remembers, at most
MAX_ADDRESSES: Final = 10_000
#: a tenant or an address that is being refused is logged at most this often (a flood must not flood the log)
_WARN_EVERY: Final = 10.0
#: credentials accepted from one address that it remembers, at most
_GOOD_PER_ADDRESS: Final = 8


@final
@define(eq=False)
class TokenBucket:
    """`rate` tokens a second, up to `burst` saved; each admission takes one."""

    rate: float
    burst: float
    tokens: float
    stamp: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        return cls(rate, burst, burst, now)

    def take(self, now: float) -> float:
        """Take a token: 0.0 if there was one, else how many seconds until there is one (nothing taken)."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def _retry_after(seconds: float) -> dict[str, str]:
    """A ``Retry-After`` header: whole seconds, at least 1 (a client must not hammer at 0)."""
    return {"retry-after": str(max(1, math.ceil(seconds)))}


@final
@define(eq=False)
class Admission:
    """The requests being handled, per tenant and in all, and each tenant's rate."""

    limits: HttpLimits
    total: int = field(default=0, init=False)
    _in_flight: dict[str, int] = field(factory=dict, init=False)
    _rates: dict[str, TokenBucket] = field(factory=dict, init=False)
    #: when each tenant was last logged as refused
    _warned: dict[str, float] = field(factory=dict, init=False)

    def in_flight(self, tenant: str) -> int:
        return self._in_flight.get(tenant, 0)

    @contextmanager
    def admit(self, tenant: str | None) -> Iterator[None]:
        """Count one request while the block runs; refuse it (429, 503) past a limit.

        `tenant` ``None`` (a public route) counts only against the server's limit.
        """
        if tenant is not None:
            self._check_tenant(tenant)
        if self.total >= self.limits.max_in_flight:
            raise HttpError(
                503,
                CapacityError(f"the server is handling {self.total} requests, its limit; retry shortly"),
                code="busy",
                headers=_retry_after(1),
            )
        self.total += 1
        if tenant is not None:
            self._in_flight[tenant] = self._in_flight.get(tenant, 0) + 1
        try:
            yield
        finally:
            self.total -= 1
            if tenant is not None:
                left = self._in_flight[tenant] - 1
                if left:
                    self._in_flight[tenant] = left
                else:
                    del self._in_flight[tenant]

    def _check_tenant(self, tenant: str) -> None:
        limits = self.limits
        now = trio.current_time()
        bucket = self._rates.get(tenant)
        if bucket is None:
            bucket = self._rates[tenant] = TokenBucket.full(limits.rate_per_tenant, limits.burst_per_tenant, now)
        wait = bucket.take(now)
        if wait:
            self._warn(tenant, now, "rate", limits.rate_per_tenant)
            raise HttpError(
                429,
                CapacityError(
                    f"tenant {tenant!r} is making more than {limits.rate_per_tenant} requests a second, its limit; "
                    f"retry in {wait:.2g} s"
                ),
                code="rate_limited",
                headers=_retry_after(wait),
            )
        held = self._in_flight.get(tenant, 0)
        if held >= limits.max_in_flight_per_tenant:
            self._warn(tenant, now, "in_flight", limits.max_in_flight_per_tenant)
            raise HttpError(
                503,
                CapacityError(f"tenant {tenant!r} has {held} requests in flight, its limit; retry shortly"),
                code="busy",
                headers=_retry_after(1),
            )

    def _warn(self, tenant: str, now: float, limit: str, value: int) -> None:
        """Log that `tenant` is refused, once per `_WARN_EVERY` seconds (each refusal is in ``http.request``)."""
        if now - self._warned.get(tenant, -_WARN_EVERY) >= _WARN_EVERY:
            self._warned[tenant] = now
            _log.warning("http.tenant_limited", tenant=tenant, limit=limit, value=value)


def address_key(client: object) -> str | None:
    """What the throttle counts by: an IPv4 address, or an IPv6 address's /64 (one host's usual share).

    `client` is the ASGI scope's ``client``: ``(host, port)``, or ``None`` when unknown.
    """
    if not isinstance(client, (tuple, list)) or not client or not isinstance(client[0], str):
        return None
    host = client[0]
    if host.count(".") == 3 and host.replace(".", "").isdigit():
        return host  # IPv4, by far the usual: no parsing on every request
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a Unix socket's path, a test transport's name: itself
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@final
@define(eq=False)
class _Address:
    bucket: TokenBucket
    #: SHA-256 of the credentials accepted from this address, most recent last
    good: OrderedDict[bytes, None] = field(factory=OrderedDict)
    #: when this address was last logged as throttled
    warned: float = -_WARN_EVERY


@final
@define(eq=False)
class AuthThrottle:
    """Failed authentications per client address, bounded; see the module docstring."""

    per_minute: int
    burst: int
    max_addresses: int = MAX_ADDRESSES
    _addresses: OrderedDict[str, _Address] = field(factory=OrderedDict, init=False)

    def __len__(self) -> int:
        return len(self._addresses)

    def check(self, address: str | None, credential: str | None) -> None:
        """Refuse (429) a request from an address that is out of failures, unless its credential
        was accepted from there before; let anything else through to be authenticated."""
        entry = self._addresses.get(address) if address is not None else None
        if entry is None:
            return
        now = trio.current_time()
        bucket = entry.bucket
        bucket.tokens = min(bucket.burst, bucket.tokens + (now - bucket.stamp) * bucket.rate)
        bucket.stamp = now
        if bucket.tokens >= 1 or (credential is not None and _digest(credential) in entry.good):
            return
        wait = (1 - bucket.tokens) / bucket.rate
        if now - entry.warned >= _WARN_EVERY:
            entry.warned = now
            _log.warning("http.auth_throttled", address=address, per_minute=self.per_minute)
        raise HttpError(
            429,
            AuthenticationError(
                f"too many failed authentications from this address; retry in {math.ceil(wait)} s with a valid token"
            ),
            code="auth_throttled",
            headers=_retry_after(wait),
        )

    def failed(self, address: str | None) -> None:
        """One failed authentication from `address`."""
        if address is not None:
            self._entry(address).bucket.take(trio.current_time())

    def succeeded(self, address: str | None, credential: str | None) -> None:
        """`credential` was accepted from `address`: it is served there even while the address is throttled."""
        if address is None or credential is None:
            return
        good = self._entry(address).good
        key = _digest(credential)
        good[key] = None
        good.move_to_end(key)
        if len(good) > _GOOD_PER_ADDRESS:
            good.popitem(last=False)

    def _entry(self, address: str) -> _Address:
        entry = self._addresses.get(address)
        if entry is None:
            rate = self.per_minute / 60
            entry = self._addresses[address] = _Address(TokenBucket.full(rate, self.burst, trio.current_time()))
            if len(self._addresses) > self.max_addresses:
                self._addresses.popitem(last=False)
        else:
            self._addresses.move_to_end(address)
        return entry


def _digest(credential: str) -> bytes:
    return hashlib.sha256(credential.encode("utf-8", "surrogateescape")).digest()
