"""The server's configuration: one TOML file for the server, its tenants, the service and the backends.

::

    [server]                      # qmux.server.ServerSettings; every key optional, defaults shown
    host = "127.0.0.1"
    port = 8765                   # 0: any free port
    journal = "qmux.sqlite"       # keep sessions and jobs across restarts (default: none)
    certfile = "cert.pem"         # serve HTTPS with this certificate chain (default: plain HTTP)
    keyfile = "key.pem"           # ... and this private key; both or neither
    max_body_bytes = 16777216     # larger request bodies answer 413
    max_blob_bytes = 67108864     # what one request's arrays and circuits may decompress to; more: 422
    header_timeout = "10s"        # a connection sends a request's headers within this, or is closed
    body_timeout = "30s"          # a request's body arrives within this once its headers have, or 408
    long_poll = "30s"             # longest a GET /jobs/{id}/results?wait= is held
    max_in_flight = 10000         # requests handled at once, all tenants; past it, 503 with Retry-After
    max_in_flight_per_tenant = 1000  # requests of one tenant handled at once; past it, 503 with Retry-After
    rate_per_tenant = 1000        # requests per second of one tenant, sustained; faster: 429 with Retry-After
    burst_per_tenant = 2000       # requests one tenant may make at once above its rate
    max_open_sessions_per_tenant = 1000  # sessions one tenant has open; past it, 429
    max_queued_jobs_per_tenant = 10000   # jobs of one tenant queued or running; past it, 429
    failed_auth_per_minute = 60   # failed authentications per client address, sustained; past it, 429
    failed_auth_burst = 20        # failed authentications one address may make at once above that
    metrics = "off"               # GET /metrics: "off" (404), "token" (Bearer <metrics token>) or "public"
    metrics_token_sha256 = "<hex>"  # sha256 of the token GET /metrics wants when metrics = "token"
    metrics_tenant_label = false  # label job, session and request metrics by tenant (a series each)

    [service]                     # qmux.ServiceSettings; every key optional, defaults shown
    idle_open_timeout = "30m"     # a session given no job this long after opening closes (S19)
    shutdown_grace = 10.0         # on shutdown, how long sessions may drain
    max_queued_jobs_per_session = 10000
    max_mailbox = 10000           # requests waiting in one session's mailbox
    max_waiting_per_backend = 1000000  # job-mode jobs and waiting sessions in a backend's line
    max_open_sessions = 1000000
    retain_finished = 100000      # finished jobs and sessions kept for lookup by id
    ittl_warning = 5.0            # a session.ittl_warning event this long before an ITTL deactivation (E1)
    max_time_warning = 60.0       # a session.max_time_warning event this long before max_time runs out
    event_buffer = 1000           # events a subscriber may fall behind by; then one "lagged" event
    max_subscribers_per_owner = 100  # event subscriptions (SSE streams) open at once per tenant
    gc = "default"                # "freeze": once started, start-up's objects leave the collector's scans

    [cluster]                     # qmux.cluster.ClusterSettings: one node of several (needs a postgresql journal)
    node = "node-a"               # this node's name, unique among the nodes
    advertise_url = "http://10.0.0.5:8765"  # where the other nodes reach this one (requests are forwarded there)
    lease = "5s"                  # a node that stops renewing loses its backends after this long
    prefer = ["fake_sherbrooke"]  # backends this node takes first (default: any free one)

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
import re
from collections.abc import Mapping
from typing import Any

from attrs import field, frozen, validators

from .._config import TableError, read_toml, register_table, structure
from .._core import (
    Backend,
    InvalidInputError,
    ServiceSettings,
    at_least_one,
    flag,
    matches,
    non_empty_text,
    positive_int,
    positive_seconds,
    tcp_port,
)
from .._http import TOKEN_SHA256
from ..backends._config import structure_backends
from ..cluster import ClusterSettings
from ._auth import Tenant, check_token, token_digest

__all__ = ["METRICS_MODES", "ServerConfig", "ServerSettings", "config_from_mapping", "load_config"]

#: who may read GET /metrics: nobody (404), the holder of the metrics token, anyone
METRICS_MODES = ("off", "token", "public")


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
    #: requests handled at once, all tenants together; more answer 503 with Retry-After
    max_in_flight: int = field(default=10_000, validator=positive_int)
    #: the most the arrays and circuits of one request may decompress to, all together
    max_blob_bytes: int = field(default=64 * 1024 * 1024, validator=positive_int)
    #: who may read GET /metrics: "off" (it answers 404), "token" (Bearer <the metrics token>) or "public"
    metrics: str = field(
        default="off", validator=matches(re.compile("|".join(METRICS_MODES)), '"off", "token" or "public"')
    )
    #: the SHA-256 of the token GET /metrics wants when metrics = "token" (not a tenant's: it sees every tenant)
    metrics_token_sha256: str | None = field(default=None, validator=validators.optional(TOKEN_SHA256), repr=False)
    #: label the job, session and request metrics by tenant: one series per tenant, so only for a few
    metrics_tenant_label: bool = field(default=False, validator=flag)
    #: requests one tenant may have handled at once; more answer 503 with Retry-After
    max_in_flight_per_tenant: int = field(default=1000, validator=positive_int)
    #: requests per second one tenant may make, sustained; faster ones answer 429 with Retry-After
    rate_per_tenant: int = field(default=1000, validator=positive_int)
    #: requests one tenant may make at once above its rate (a token bucket's size)
    burst_per_tenant: int = field(default=2000, validator=positive_int)
    #: sessions one tenant may have open at once; more answer 429
    max_open_sessions_per_tenant: int = field(default=1000, validator=positive_int)
    #: jobs one tenant may have queued or running at once; more answer 429
    max_queued_jobs_per_tenant: int = field(default=10_000, validator=positive_int)
    #: the longest a connection may take to send a request's headers (from its opening or its last answer)
    header_timeout: float = field(default=10.0, validator=positive_seconds)
    #: the longest a request's body may take to arrive once its headers have; slower ones answer 408
    body_timeout: float = field(default=30.0, validator=positive_seconds)
    #: failed authentications per minute one client address may make, sustained; more answer 429
    failed_auth_per_minute: int = field(default=60, validator=positive_int)
    #: failed authentications one client address may make at once above that rate
    failed_auth_burst: int = field(default=20, validator=positive_int)
    #: a PEM certificate (chain) file: serve HTTPS; needs keyfile
    certfile: str | None = field(default=None, validator=validators.optional(non_empty_text))
    #: the PEM private key of certfile
    keyfile: str | None = field(default=None, validator=validators.optional(non_empty_text))

    def __attrs_post_init__(self) -> None:
        if (self.metrics == "token") != (self.metrics_token_sha256 is not None):
            raise InvalidInputError(
                'metrics = "token" and metrics_token_sha256 go together: give both (the token\'s SHA-256: '
                'printf %s "$TOKEN" | sha256sum), or neither'
            )
        if (self.certfile is None) != (self.keyfile is None):
            raise InvalidInputError("certfile and keyfile go together: give both to serve HTTPS, or neither")

    @property
    def tls(self) -> bool:
        """Whether the server speaks HTTPS."""
        return self.certfile is not None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"


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
    #: this server as one node of several sharing a PostgreSQL journal; ``None``: a lone server
    cluster: ClusterSettings | None = None

    def __attrs_post_init__(self) -> None:
        journal = self.server.journal or ""
        if self.cluster is not None and not journal.lower().startswith(("postgresql:", "postgres:")):
            raise InvalidInputError(
                '[cluster] needs the nodes\' shared journal: [server] journal = "postgresql://user@host:port/dbname" '
                f"(it is {self.server.journal!r})"
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
