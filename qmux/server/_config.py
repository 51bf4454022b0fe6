"""The server's configuration: one TOML file for the server, its tenants, the service and the backends.

::

    [server]                      # every key optional; defaults shown
    host = "127.0.0.1"
    port = 8765
    journal = "qmux.sqlite"       # keep sessions and jobs across restarts (default: none)
    max_body_bytes = 16777216     # larger request bodies answer 413
    long_poll = 30.0              # longest a GET /jobs/{id}/results?wait= is held, in seconds
    max_in_flight = 10000         # requests handled at once; past it, 503 with Retry-After
    max_blob_bytes = 268435456    # largest decompressed array or circuit in a job's params

    [service]                     # qmux.ServiceSettings: idle_open_timeout, shutdown_grace, ...
    shutdown_grace = 10.0

    [[tenants]]                   # at least one
    name = "alice"
    token_sha256 = "<hex>"        # sha256 of the token: printf %s "$TOKEN" | sha256sum
    [[tenants]]
    name = "dev"
    token = "a-plain-token"       # plain tokens are for development

    [backends.fake_sherbrooke]    # read by qmux.backends (schema there); none: the embedded set
    num_qubits = 127

Unknown keys in the tables read here are errors (a typo must not silently fall back to a
default); other top-level tables are left to whoever owns them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

import attrs
from attrs import field, frozen, validators

from .._core import Backend, InvalidInputError, ServiceSettings, positive_int, positive_seconds
from ._auth import Tenant

__all__ = ["ServerConfig", "ServerSettings", "config_from_mapping", "load_config"]

_T = TypeVar("_T")


def _port(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise InvalidInputError(f"{attribute.name}={value!r} must be a TCP port, 0-65535 (0: any free port)")


def _optional_text(_instance: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidInputError(f"{attribute.name}={value!r} must be a non-empty string")


@frozen
class ServerSettings:
    """How the HTTP front door listens and what it bounds."""

    host: str = field(default="127.0.0.1", validator=validators.instance_of(str))
    port: int = field(default=8765, validator=_port)
    #: a SQLite journal file, so that sessions and jobs survive a restart
    journal: str | None = field(default=None, validator=_optional_text)
    #: larger request bodies answer 413
    max_body_bytes: int = field(default=16 * 1024 * 1024, validator=positive_int)
    #: the longest a results request waits for its job (a long poll), in seconds
    long_poll: float = field(default=30.0, validator=positive_seconds)
    #: requests handled at once; more answer 503 with Retry-After
    max_in_flight: int = field(default=10_000, validator=positive_int)
    #: largest decompressed array or circuit in a job's inputs
    max_blob_bytes: int = field(default=256 * 1024 * 1024, validator=positive_int)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@frozen
class ServerConfig:
    """Everything ``qmux serve`` needs."""

    tenants: tuple[Tenant, ...]
    server: ServerSettings = field(factory=ServerSettings)
    service: ServiceSettings = field(factory=ServiceSettings)
    #: ``None``: the embedded default backends
    backends: tuple[Backend, ...] | None = None


def load_config(path: str | os.PathLike[str]) -> ServerConfig:
    """Read a config file (format in the module docstring); errors name the file and the key."""
    source = os.fspath(path)
    try:
        with open(path, "rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        raise InvalidInputError(f"no config file at {source!r}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"{source}: not valid TOML: {exc}") from exc
    return config_from_mapping(document, source=source)


def config_from_mapping(document: Mapping[str, Any], *, source: str = "<config>") -> ServerConfig:
    """The config of an already parsed document; `source` names it in errors."""
    server = _settings(ServerSettings, document.get("server", {}), f"{source}: [server]")
    service = _settings(ServiceSettings, document.get("service", {}), f"{source}: [service]")
    tenants = _tenants(document.get("tenants"), source)
    backends: tuple[Backend, ...] | None = None
    if "backends" in document:
        from ..backends._config import backends_from_mapping

        backends = tuple(backends_from_mapping({"backends": document["backends"]}, source=source))
    return ServerConfig(tenants=tenants, server=server, service=service, backends=backends)


def _settings(cls: type[_T], table: object, where: str) -> _T:
    if not isinstance(table, Mapping):
        raise InvalidInputError(f"{where} must be a table, not a {type(table).__name__}")
    known = set(attrs.fields_dict(cast(Any, cls)))
    for key in table:
        if key not in known:
            raise InvalidInputError(f"{where}: unknown key {key!r}; known keys: {', '.join(sorted(known))}")
    try:
        return cls(**table)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from exc


def _tenants(tables: object, source: str) -> tuple[Tenant, ...]:
    if not isinstance(tables, Sequence) or isinstance(tables, str) or not tables:
        raise InvalidInputError(
            f"{source}: no tenants; add [[tenants]] tables with a name and a token_sha256 (or token)"
        )
    tenants: list[Tenant] = []
    for index, table in enumerate(tables):
        where = f"{source}: [[tenants]] #{index + 1}"
        if not isinstance(table, Mapping):
            raise InvalidInputError(f"{where} must be a table")
        unknown = set(table) - {"name", "token", "token_sha256"}
        if unknown:
            raise InvalidInputError(f"{where}: unknown key {sorted(unknown)[0]!r}; use name, token_sha256 or token")
        name: Any = table.get("name")  # checked by Tenant
        if ("token" in table) == ("token_sha256" in table):
            raise InvalidInputError(f"{where} ({name!r}) needs exactly one of token_sha256 and token")
        try:
            if "token" in table:
                tenants.append(Tenant.from_token(name, table["token"]))
            else:
                tenants.append(Tenant(name, table["token_sha256"]))
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: {exc}") from exc
    return tuple(tenants)
