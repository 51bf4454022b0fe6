"""The server's config file, its tenants and tokens."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

import qmux
from qmux.server import ServerSettings, Tenant, config_from_mapping, load_config, token_digest
from qmux.server._auth import TokenAuth

FULL = """
[server]
host = "0.0.0.0"
port = 9000
journal = "qmux.sqlite"
long_poll = 10

[service]
shutdown_grace = 2.5
idle_open_timeout = 60

[[tenants]]
name = "alice"
token_sha256 = "{digest}"

[[tenants]]
name = "bob"
token = "bobs-plain-token"

[backends.tiny]
num_qubits = 3
job_seconds = 0.1

[someone_elses]
anything = true
"""


def test_a_full_config_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "qmux.toml"
    path.write_text(FULL.replace("{digest}", hashlib.sha256(b"alices-token").hexdigest()))
    config = load_config(path)
    assert config.server == ServerSettings(host="0.0.0.0", port=9000, journal="qmux.sqlite", long_poll=10)
    assert config.service.shutdown_grace == 2.5 and config.service.idle_open_timeout == 60
    assert [t.name for t in config.tenants] == ["alice", "bob"]
    auth = TokenAuth(config.tenants)
    assert auth.tenant("Bearer alices-token") == "alice" and auth.tenant("Bearer bobs-plain-token") == "bob"
    assert config.backends is not None and [b.name for b in config.backends] == ["tiny"]
    assert config.backends[0].config.num_qubits == 3


def test_without_backends_the_embedded_set_is_served() -> None:
    config = config_from_mapping({"tenants": [{"name": "a", "token": "a-long-token"}]})
    assert config.backends is None and config.server.port == 8765 and config.server.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({}, "no tenants"),
        ({"tenants": []}, "no tenants"),
        ({"tenants": [{"name": "a"}]}, "exactly one of token_sha256 and token"),
        ({"tenants": [{"name": "a", "token": "x" * 10, "token_sha256": "0" * 64}]}, "exactly one"),
        ({"tenants": [{"name": "a", "token_sha256": "XYZ"}]}, "64 lowercase hex"),
        ({"tenants": [{"name": "a", "token": "short"}]}, "8 or more characters"),
        ({"tenants": [{"name": "a b", "token": "long-enough"}]}, "tenant name 'a b'"),
        ({"tenants": [{"name": "a", "token": "long-enough", "role": "admin"}]}, "unknown key 'role'"),
        ({"tenants": {"name": "a"}}, "no tenants"),
        ({"server": {"prot": 1}, "tenants": [{"name": "a", "token": "long-enough"}]}, "[server]: unknown key 'prot'"),
        ({"server": {"port": 70000}, "tenants": [{"name": "a", "token": "long-enough"}]}, "TCP port"),
        ({"server": {"long_poll": 0}, "tenants": [{"name": "a", "token": "long-enough"}]}, "long_poll=0"),
        ({"service": {"grace": 1}, "tenants": [{"name": "a", "token": "long-enough"}]}, "[service]: unknown key"),
        ({"server": [], "tenants": [{"name": "a", "token": "long-enough"}]}, "must be a table"),
        ({"tenants": [{"name": "a", "token": "long-enough"}], "backends": {"b": {"qubits": 3}}}, "'qubits'"),
    ],
)
def test_config_mistakes_name_the_table_and_the_key(document: dict[str, Any], words: str) -> None:
    with pytest.raises(qmux.InvalidInputError) as refused:
        config_from_mapping(document, source="qmux.toml")
    assert words in str(refused.value) and "qmux.toml" in str(refused.value)


def test_a_missing_or_broken_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(qmux.InvalidInputError, match="no config file"):
        load_config(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\n")
    with pytest.raises(qmux.InvalidInputError, match="not valid TOML"):
        load_config(broken)


def test_tenants_need_distinct_names_and_tokens() -> None:
    with pytest.raises(qmux.InvalidInputError, match="two tenants are named 'a'"):
        TokenAuth([Tenant.from_token("a", "token-one-1"), Tenant.from_token("a", "token-two-2")])
    with pytest.raises(qmux.InvalidInputError, match="the same token"):
        TokenAuth([Tenant.from_token("a", "token-one-1"), Tenant.from_token("b", "token-one-1")])
    with pytest.raises(qmux.InvalidInputError, match="at least one tenant"):
        TokenAuth([])


@pytest.mark.parametrize(
    ("header", "tenant"),
    [
        ("Bearer token-one-1", "a"),
        ("bearer   token-one-1  ", "a"),
        ("BEARER token-one-1", "a"),
        ("Bearer token-one-2", None),
        ("Basic token-one-1", None),
        ("token-one-1", None),
        ("Bearer", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_headers_are_parsed_strictly(header: str | None, tenant: str | None) -> None:
    assert TokenAuth([Tenant.from_token("a", "token-one-1")]).tenant(header) == tenant


def test_tenants_keep_only_the_digest() -> None:
    tenant = Tenant.from_token("a", "token-one-1")
    assert tenant.token_sha256 == token_digest("token-one-1") and "token-one-1" not in repr(tenant)
