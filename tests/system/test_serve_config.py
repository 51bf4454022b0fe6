"""The keys of ``[server]`` that only a real ``qmux serve`` shows: where it listens, its journal, its
header timeout and its TLS certificate.

Real sockets on 127.0.0.1 and the real clock; every test is bounded by an absolute
``trio.fail_after``. The other keys are in ``tests/server/test_server_config.py``.
"""

from __future__ import annotations

import functools
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest
import trio
import trustme

import qmux
from qmux.server import ServerConfig, load_config, serve

TOKEN = "alices-token"


def write_config(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "qmux.toml"
    text = f'[server]\n{server}\n[service]\nshutdown_grace = 0.5\n[[tenants]]\nname = "alice"\ntoken = "{TOKEN}"\n'
    path.write_text(text + "[backends.lab]\njob_seconds = 0\n", encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def serving(config: ServerConfig) -> AsyncIterator[str]:
    """``serve(config)`` in this process: its URL; shut down on exit."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(functools.partial(serve, config, shutdown_trigger=stop.wait))
        try:
            yield url
        finally:
            stop.set()


@pytest.mark.parametrize("port", ["free", 0])
async def test_host_and_port_are_where_serve_listens(tmp_path: Path, port: int | str) -> None:
    chosen = free_port() if port == "free" else 0
    config = load_config(write_config(tmp_path, f'host = "127.0.0.1"\nport = {chosen}'))
    with trio.fail_after(30):
        async with serving(config) as url:
            host, _, bound = url.removeprefix("http://").rpartition(":")
            assert host == "127.0.0.1" and (int(bound) == chosen if chosen else int(bound) > 0)
            async with qmux.connect(url, token=TOKEN) as service:
                assert [backend.name for backend in service.backends()] == ["lab"]


async def test_journal_keeps_jobs_across_a_restart_of_serve(tmp_path: Path) -> None:
    journal = tmp_path / "qmux.sqlite"
    with_journal = load_config(write_config(tmp_path, f'host = "127.0.0.1"\nport = 0\njournal = "{journal}"'))
    assert with_journal.server.journal == str(journal)
    without = attrs.evolve(with_journal, server=attrs.evolve(with_journal.server, journal=None))
    with trio.fail_after(30):
        async with serving(with_journal) as url, qmux.connect(url, token=TOKEN) as service:
            job = await service.backend("lab").run("echo", "kept")
            assert await job.result() == "kept"
        async with serving(with_journal) as url, qmux.connect(url, token=TOKEN) as service:
            assert await (await service.job(job.job_id)).result() == "kept"
        async with serving(without) as url, qmux.connect(url, token=TOKEN) as service:
            with pytest.raises(qmux.JobNotFoundError):
                await service.job(job.job_id)


@pytest.mark.parametrize("timeout", [0.5, 1.5])
async def test_header_timeout_closes_a_connection_slow_to_send_its_headers(tmp_path: Path, timeout: float) -> None:
    """A client that sends part of a request's headers and then nothing is closed after the timeout,
    without ever reaching the app; a client that sends its request in time is answered."""
    config = load_config(write_config(tmp_path, f'host = "127.0.0.1"\nport = 0\nheader_timeout = {timeout}'))
    with trio.fail_after(30):
        async with serving(config) as url:
            host, _, port = url.removeprefix("http://").rpartition(":")
            stream = await trio.open_tcp_stream(host, int(port))
            await stream.send_all(b"GET /backends HTTP/1.1\r\nhost: x\r\nauthori")  # and no more
            started = trio.current_time()
            assert await stream.receive_some() == b""  # closed by the server, nothing answered
            assert timeout - 0.1 <= trio.current_time() - started < timeout + 1.0
            await stream.aclose()
            async with qmux.connect(url, token=TOKEN) as service:  # in time: served as usual
                assert [backend.name for backend in service.backends()] == ["lab"]


async def test_certfile_and_keyfile_serve_https_that_connect_verifies(tmp_path: Path) -> None:
    """With a certificate, ``qmux serve`` speaks HTTPS; ``qmux.connect`` verifies it against the CA it
    is given (a path or an SSLContext), and refuses a server whose certificate it cannot verify."""
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    certfile, keyfile, cafile = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    certificate.cert_chain_pems[0].write_to_path(certfile)
    certificate.private_key_pem.write_to_path(keyfile)
    authority.cert_pem.write_to_path(cafile)
    server = f'host = "127.0.0.1"\nport = 0\ncertfile = "{certfile}"\nkeyfile = "{keyfile}"'
    config = load_config(write_config(tmp_path, server))
    context = ssl.create_default_context()
    authority.configure_trust(context)
    with trio.fail_after(30):
        async with serving(config) as url:
            assert url.startswith("https://127.0.0.1:")
            for verify in (str(cafile), cafile, context):
                async with qmux.connect(url, token=TOKEN, verify=verify) as service:
                    job = await service.backend("lab").run("echo", "over TLS")
                    assert await job.result() == "over TLS"
            with pytest.raises(qmux.ServiceClosedError) as refused:
                async with qmux.connect(url, token=TOKEN, retries=0):  # the public CAs do not vouch for it
                    pass
            assert "certificate verify failed" in str(refused.value)
            with pytest.raises(qmux.ServiceClosedError):
                async with qmux.connect(url.replace("https", "http"), token=TOKEN, retries=0):
                    pass
