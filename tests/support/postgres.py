"""A real PostgreSQL server for the tests, started by the tests themselves and stopped at the end.

Debian's binaries (``/usr/lib/postgresql/<version>/bin``; ``make test`` installs the
``postgresql`` package when they are missing) run a throw-away cluster in a temporary directory:
its socket directory is there too, and it listens on a free loopback port only, with trust
authentication (nothing but this machine's own processes can reach it). ``initdb`` refuses to
run as root, so under root (as in CI) the cluster belongs to the ``postgres`` system user that
the package creates. Every wait is bounded.

Fixtures: `postgres_server` (one per test session, however many conftests import it) and
`postgres_url` (a fresh, empty database per test, dropped afterwards). Conftests that need them
import both names.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from attrs import define

__all__ = ["PostgresServer", "find_binaries", "postgres_server", "postgres_url", "running_postgres"]

BINARIES = "/usr/lib/postgresql/*/bin"
#: the superuser initdb creates; trust authentication, loopback only
SUPERUSER = "postgres"
#: the system user the server runs as when the tests run as root (initdb refuses root)
SYSTEM_USER = "postgres"
#: loopback only; fsync stays on, so that what the tests measure is what a real server does
SETTINGS = ("-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


@define(eq=False)
class PostgresServer:
    """A cluster of our own: where to reach it, a database of one's own on it, and (for fault
    tests) a crash and a restart on the same port and data."""

    bindir: Path
    data: Path
    sockets: Path
    log: Path
    run_as: pwd.struct_passwd | None
    host: str = "127.0.0.1"
    port: int = 0
    _process: subprocess.Popen[bytes] | None = None

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = f"qmux_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())

    def start(self) -> None:
        """Run the server (on a free port the first time, on the same one after), ready to connect."""
        for _ in range(1 if self.port else 3):  # a free port may be taken between our probe and the bind
            port = self.port or _free_port()
            with self.log.open("ab") as out:
                process = subprocess.Popen(
                    [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(port), *self._settings()],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, so that `crash` reaches every backend
                    **_as_user(self.run_as),
                )
            if _wait_ready(f"postgresql://{SUPERUSER}@{self.host}:{port}/postgres", process, self.log):
                self.port, self._process = port, process
                return
            _stop(process)
        raise RuntimeError(f"PostgreSQL did not start; its log:\n{self.log.read_text(errors='replace')[-4000:]}")

    def _settings(self) -> list[str]:
        return ["-k", str(self.sockets), *SETTINGS]

    def stop(self) -> None:
        """Fast shutdown: clients are disconnected, nothing committed is lost."""
        if self._process is not None:
            _stop(self._process)
            self._process = None

    def crash(self) -> None:
        """SIGKILL to the server and every backend at once, as a crash of its machine would do:
        what was committed (fsync is on) must come back through WAL replay on `start`."""
        if self._process is not None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=STOP_TIMEOUT)
            self._process = None


def find_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin directory (``/usr/lib/postgresql/<major>/bin``), if any."""
    found = [
        Path(path)
        for path in glob.glob(BINARIES)
        if Path(path).parent.name.isdigit()
        and (Path(path) / "initdb").is_file()
        and (Path(path) / "postgres").is_file()
    ]
    return max(found, key=lambda path: int(path.parent.name), default=None)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Initialise a cluster in a temporary directory, run it on a free loopback port, then stop it."""
    bindir = find_binaries()
    if bindir is None:
        pytest.skip(
            f"PostgreSQL's server binaries are not installed (no {BINARIES}/initdb) and could not be: "
            "`make test` installs Debian's `postgresql` package when it runs as root with apt-get; "
            "otherwise install it (apt-get install postgresql) to run the PostgreSQL journal tests"
        )
    run_as = _run_as()
    # not pytest's tmp_path: its parents are private to root, and the server may run as `postgres`
    base = Path(tempfile.mkdtemp(prefix="qmux-pg-"))
    try:
        if run_as is not None:
            os.chown(base, run_as.pw_uid, run_as.pw_gid)
        server = PostgresServer(bindir, base / "data", base, base / "server.log", run_as)
        initdb = [bindir / "initdb", "-D", server.data, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8"]
        initdb += ["--locale=C", "--no-sync"]
        _run(initdb, run_as, server.log)
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run_as() -> pwd.struct_passwd | None:
    """The `postgres` system user when we are root (initdb refuses root), else nobody: run as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pytest.skip(f"the tests run as root and there is no {SYSTEM_USER!r} system user to run PostgreSQL as")


def _as_user(run_as: pwd.struct_passwd | None) -> dict[str, Any]:
    if run_as is None:
        return {}
    return {"user": run_as.pw_uid, "group": run_as.pw_gid, "extra_groups": [], "cwd": "/"}


def _run(command: list[Any], run_as: pwd.struct_passwd | None, log: Path) -> None:
    with log.open("ab") as out:
        subprocess.run(
            [str(part) for part in command],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=120,
            **_as_user(run_as),
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> bool:
    """True once the server takes connections; False if it exited (a port taken); bounded."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with psycopg.connect(url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            time.sleep(0.05)
    _stop(process)
    raise RuntimeError(f"PostgreSQL did not accept connections within {START_TIMEOUT} s; see {log}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT: disconnect clients, no waiting for them), then SIGKILL if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


class _Shared:
    """One server per test session, shared by every conftest that imports the fixture."""

    def __init__(self) -> None:
        self.users = 0
        self.server: PostgresServer | None = None
        self._stack = contextlib.ExitStack()

    def acquire(self) -> PostgresServer:
        if self.server is None:
            self.server = self._stack.enter_context(running_postgres())
        self.users += 1
        return self.server

    def release(self) -> None:
        self.users -= 1
        if self.users == 0:
            self.server = None
            self._stack.close()


_SHARED = _Shared()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole test session (skips when it cannot be installed)."""
    server = _SHARED.acquire()
    try:
        yield server
    finally:
        _SHARED.release()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database of this test's own."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)
