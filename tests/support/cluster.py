"""Nodes of a qmux cluster as real ``qmux serve`` processes on loopback, sharing one PostgreSQL database.

`NodeProcess` starts one node from a config this module writes (``[cluster]`` with a name, a
free loopback port as its advertised URL, a short lease and the backends it prefers; every node
configures the same backends), waits for its ``qmux serving on`` line, and stops it with SIGTERM
(a graceful hand-over) or SIGKILL (a crash). Every wait is bounded. The cluster tests and the
failover benchmark use it.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from attrs import define, field

from .serving import end_process

__all__ = ["TOKEN", "NodeProcess", "Relay", "free_port", "node_config", "start_nodes"]

TOKEN = "token-of-the-cluster-tests"
START_TIMEOUT = 60.0


def free_port() -> int:
    """A loopback port free now (a node must advertise its URL before it listens)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def node_config(
    *,
    name: str,
    port: int,
    journal: str,
    prefer: Sequence[str],
    backends: Sequence[str],
    lease: float,
    job_seconds: float,
    grace: float = 5.0,
) -> str:
    """The TOML of one node; every node of a cluster gets the same backends."""
    tables = "\n".join(
        f"[backends.{backend}]\njob_seconds = {job_seconds}\ninteractive_ttl = 30\n" for backend in backends
    )
    preferred = ", ".join(f'"{backend}"' for backend in prefer)
    return f"""
[server]
host = "127.0.0.1"
port = {port}
journal = "{journal}"
rate_per_tenant = 100000
burst_per_tenant = 100000

[service]
shutdown_grace = {grace}

[cluster]
node = "{name}"
advertise_url = "http://127.0.0.1:{port}"
lease = {lease}
prefer = [{preferred}]

[[tenants]]
name = "agent"
token = "{TOKEN}"

{tables}
"""


@define(eq=False)
class NodeProcess:
    """One ``qmux serve`` node in a subprocess; its stderr (the log) kept in a file for a failing test."""

    name: str
    config: Path
    log: Path
    port: int
    #: also serve IBM's Runtime API (``--ibm-compat``)
    ibm_compat: bool = False
    process: subprocess.Popen[str] | None = field(default=None, init=False)
    _serving: threading.Event = field(factory=threading.Event, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.launch()
        self.ready()

    def launch(self) -> None:
        """Start the process; `ready` waits until it serves."""
        with self.log.open("a", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "qmux", "serve", "--config", str(self.config), "--log-format", "json"]
                + (["--ibm-compat"] if self.ibm_compat else []),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self._serving = threading.Event()

        def read() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                if line.startswith("qmux serving on "):
                    self._serving.set()

        threading.Thread(target=read, daemon=True).start()

    def ready(self) -> None:
        if not self._serving.wait(START_TIMEOUT):
            self.kill()
            raise AssertionError(f"node {self.name} did not start; its log:\n{self.log.read_text()[-4000:]}")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (a graceful stop: it hands its backends over); its exit status."""
        return self._end(signal.SIGTERM, timeout)

    def kill(self) -> int:
        """SIGKILL: a crash."""
        return self._end(signal.SIGKILL, 30)

    def wait(self, timeout: float) -> int | None:
        """Its exit status once it exits by itself within `timeout`, else ``None``."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def _end(self, signum: signal.Signals, timeout: float) -> int:
        return 0 if self.process is None else end_process(self.process, signum, timeout)


def start_nodes(
    folder: Path,
    journal: str,
    layout: dict[str, Sequence[str]],
    *,
    lease: float,
    job_seconds: float,
    grace: float = 5.0,
    journal_of: Mapping[str, str] | None = None,
    ibm_compat: bool = False,
) -> list[NodeProcess]:
    """One started node per entry of `layout` (name -> the backends it prefers), in order;
    `journal_of` gives some nodes another URL to the same database (through a `Relay`)."""
    backends = sorted({backend for prefer in layout.values() for backend in prefer})
    nodes = []
    for name, prefer in layout.items():
        port = free_port()
        config = folder / f"{name}.toml"
        config.write_text(
            node_config(
                name=name,
                port=port,
                journal=(journal_of or {}).get(name, journal),
                prefer=prefer,
                backends=backends,
                lease=lease,
                job_seconds=job_seconds,
                grace=grace,
            ),
            encoding="utf-8",
        )
        node = NodeProcess(name, config, folder / f"{name}.log", port, ibm_compat=ibm_compat)
        node.launch()  # all at once: each takes what it prefers before the others take what is left
        nodes.append(node)
    for node in nodes:
        node.ready()
    return nodes


@define(eq=False)
class Relay:
    """A TCP relay on loopback between a node and the database, which a test can cut (a partition).

    Once `cut`, nothing crosses any more and nothing is refused either: bytes are dropped and new
    connections are accepted and left hanging, as when a network drops packets. Threads, not Trio:
    it must go on relaying while a test's own event loop waits on something else.
    """

    target_port: int
    port: int = field(init=False, default=0)
    _cut: threading.Event = field(init=False, factory=threading.Event)
    _listener: socket.socket = field(init=False, factory=socket.socket)
    #: every connection's two ends, closed with the relay
    _sockets: list[socket.socket] = field(init=False, factory=list)

    def start(self) -> None:
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen()
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self._cut.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            if self._cut.is_set():
                continue  # accepted, then never answered
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets.append(server)
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self._cut.is_set():
                    sink.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self._listener.close()
        for end in self._sockets:
            end.close()
