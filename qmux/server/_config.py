"""The server's configuration: one TOML file for the server, its tenants, the service and the backends.

::

    [server]                      # qmux.server.ServerSettings; every key optional, defaults shown
    host = "127.0.0.1"
    port = 8765                   # 0: any free port
    journal = "qmux.sqlite"       # keep sessions and jobs across restarts (default: none)
    max_body_bytes = 16777216     # larger request bodies answer 413
    long_poll = "30s"             # longest a GET /jobs/{id}/results?wait= is held
    max_in_flight = 10000         # requests handled at once; past it, 503 with Retry-After
    max_blob_bytes = 268435456    # largest decompressed array or circuit in a job's params

    [service]                     # qmux.ServiceSettings; every key optional, defaults shown
    idle_open_timeout = "30m"     # a session given no job this long after opening closes (S19)
    shutdown_grace = 10.0         # on shutdown, how long sessions may drain
    max_queued_jobs_per_session = 10000
    max_mailbox = 10000           # requests waiting in one session's mailbox
    max_waiting_per_backend = 1000000  # job-mode jobs and waiting sessions in a backend's line
    max_open_sessions = 1000000
    retain_finished = 100000      # finished jobs and sessions kept for lookup by id
    gc = "freeze"                 # once started, start-up's objects leave the collector's scans; or "default"

    [[tenants]]                   # at least one
    name = "alice"
    token_sha256 = "<hex>"        # sha256 of the token: printf %s "$TOKEN" | sha256sum
    [[tenants]]
    name = "dev"
    token = "a-plain-token"       # plain tokens are for development

    [backends.fake_sherbrooke]    # read by qmux.backends (schema there); none: the embedded set
    num_qubits = 127

The tables are the attrs classes themselves, read by ``qmux._config``: ``[server]`` is
`ServerSettings`, ``[service]`` is `qmux.ServiceSettings`, each ``[[tenants]]`` a `Tenant`
(with ``token`` as a development shorthand for ``token_sha256``), ``[backends.*]``
`qmux.backends` tables. A field added to one of those classes is a key at once (how: the
docstring of ``qmux._config``). Times take seconds or a duration ("90s", "25m", "1h30m").

Unknown keys in the tables read here are errors (a typo must not silently fall back to a
default); other top-level tables are left to whoever owns them. Every mistake of the file is
reported at once, in one `InvalidInputError` naming the file, the table and the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from attrs import field, frozen, validators

from .._config import TableError, read_toml, register_table, structure
from .._core import (
    Backend,
    ServiceSettings,
    at_least_one,
    non_empty_text,
    positive_int,
    positive_seconds,
    tcp_port,
)
from ..backends._config import structure_backends
from ._auth import Tenant, check_token, token_digest

__all__ = ["ServerConfig", "ServerSettings", "config_from_mapping", "load_config"]


@frozen
class ServerSettings:
    """How the HTTP front door listens and what it bounds (the ``[server]`` table)."""

    #: the interface to listen on ("0.0.0.0": all of them)
    host: str = field(default="127.0.0.1", validator=non_empty_text)
    #: the TCP port; 0 picks any free one
    port: int = field(default=8765, validator=tcp_port)
    #: a SQLite journal file, so that sessions and jobs survive a restart
    journal: str | None = field(default=None, validator=validators.optional(non_empty_text))
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
    """Everything ``qmux serve`` needs: the whole config file."""

    tenants: tuple[Tenant, ...] = field(
        validator=at_least_one("[[tenants]] table, with a name and a token_sha256 (or token)")
    )
    server: ServerSettings = field(factory=ServerSettings)
    service: ServiceSettings = field(factory=ServiceSettings)
    #: ``None``: the embedded default backends
    backends: tuple[Backend, ...] | None = field(
        default=None, validator=validators.optional(at_least_one("[backends.<name>] table"))
    )


def _tenant_table(table: Mapping[str, Any]) -> Mapping[str, Any]:
    """A ``[[tenants]]`` table may give its plain ``token``; the server keeps only the digest."""
    if ("token" in table) == ("token_sha256" in table):
        raise TableError("needs exactly one of token_sha256 and token")
    if "token" not in table:
        return table
    rest = {key: value for key, value in table.items() if key != "token"}
    return {**rest, "token_sha256": token_digest(check_token(table["token"]))}


register_table(Tenant, prepare=_tenant_table, also_accepts=("token",))
# other top-level tables belong to whoever else reads the file
register_table(ServerConfig, forbid_extra_keys=False, hooks={"backends": structure_backends})


def load_config(path: str | os.PathLike[str]) -> ServerConfig:
    """Read a config file (format in the module docstring); errors name the file, the table and the key."""
    return config_from_mapping(read_toml(path, what="config file"), source=os.fspath(path))


def config_from_mapping(document: Mapping[str, Any], *, source: str = "<config>") -> ServerConfig:
    """The config of an already parsed document; `source` names it in errors."""
    return structure(document, ServerConfig, source=source)
