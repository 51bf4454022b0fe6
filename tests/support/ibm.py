"""A real ``qmux serve --ibm-compat`` and real qiskit-ibm-runtime clients, each in its own process.

`IbmServer` runs the command a user runs, on 127.0.0.1 and a free port, and reads the
``export`` lines it prints: the only thing the clients are told. `ClientProcess` runs
tests/support/ibm_client_worker.py with that environment and sends it snippets to run. Every wait has
an absolute timeout, and everything started is stopped by its own handle; nothing can hang.
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from qmux.ibm import client_environment

WORKER = Path(__file__).with_name("ibm_client_worker.py")
ROOT = Path(__file__).resolve().parents[2]


class _Lines:
    """The lines of a pipe, read on a thread so that waiting for one can time out."""

    def __init__(self, pipe: IO[str]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self._thread.start()

    def _pump(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def next(self, deadline: float, what: str) -> str:
        try:
            line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"timed out waiting for {what}") from None
        if line is None:
            raise AssertionError(f"the process ended while waiting for {what}")
        return line

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _stop(process: subprocess.Popen[str], lines: _Lines | None, *, interrupt: bool, grace: float) -> None:
    """End `process`: close its stdin (a client's cue), or send SIGINT (the server's); kill it if it lingers."""
    if process.stdin is not None:
        process.stdin.close()
    if interrupt and process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    if lines is not None:
        lines.join(timeout=5)
    if process.stdout is not None:
        process.stdout.close()


class IbmServer:
    """``python -m qmux serve --ibm-compat --config FILE --port 0``, and the environment it printed."""

    #: any URL: only the names of `client_environment`'s variables are read from it
    URL_SHAPE = "http://127.0.0.1:1"

    def __init__(self, config: Path, log: Path, *, timeout: float = 60.0) -> None:
        self.log = log
        self._log_file = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "qmux", "serve", "--ibm-compat", "--config", str(config), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        self._lines = lines = _Lines(self.process.stdout)
        deadline = time.monotonic() + timeout
        self.printed: list[str] = []
        self.environment: dict[str, str] = {}
        try:
            while not set(client_environment(self.URL_SHAPE, "token")) - {"QISKIT_IBM_TOKEN"} <= set(self.environment):
                line = lines.next(deadline, "qmux serve --ibm-compat to print its export lines")
                self.printed.append(line)
                if line.startswith("export "):
                    name, _, value = shlex.split(line)[1].partition("=")
                    self.environment[name] = value
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return self.environment["IAM_URL"]

    def client_environment(self, token: str) -> dict[str, str]:
        """This process's environment plus the printed lines, with `token` as the API key."""
        return {**os.environ, **self.environment, "QISKIT_IBM_TOKEN": token}

    def stop(self) -> None:
        _stop(self.process, self._lines, interrupt=True, grace=15.0)
        self._log_file.close()


class ClientProcess:
    """A qiskit-ibm-runtime client process (tests/support/ibm_client_worker.py) that runs snippets."""

    def __init__(self, environment: dict[str, str], log: Path, *, timeout: float = 60.0) -> None:
        self._log_file = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            env=environment,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        self._lines = _Lines(self.process.stdout)
        try:
            self._reply(time.monotonic() + timeout, "the client process to import qiskit-ibm-runtime")
        except BaseException:
            self.stop()
            raise

    def _reply(self, deadline: float, what: str) -> dict[str, Any]:
        reply: dict[str, Any] = json.loads(self._lines.next(deadline, what))
        return reply

    def run(self, code: str, *, timeout: float = 60.0) -> str:
        """Run `code` in the client; what it printed. Its exception fails the test with its traceback."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"code": code}) + "\n")
        self.process.stdin.flush()
        reply = self._reply(time.monotonic() + timeout, "the snippet to finish")
        if reply["error"] is not None:
            raise AssertionError(f"the snippet raised:\n{reply['error']}\nafter printing:\n{reply['stdout']}")
        return str(reply["stdout"])

    def stop(self) -> None:
        _stop(self.process, self._lines, interrupt=False, grace=10.0)
        self._log_file.close()
