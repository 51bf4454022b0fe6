"""``qmux serve`` as a real process, for system tests that drive it from outside (the CLI, a browser).

`serve_process` writes the TOML config it is given, starts ``python -m qmux serve`` on it (port 0,
so each server gets a free one), waits for the line that names its URL, and stops it with SIGTERM
on exit (SIGKILL if it has not stopped within 30 s). Every wait is bounded.
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

__all__ = ["ServeProcess", "end_process", "serve_process"]

#: the longest a server may take to print its URL
START_SECONDS = 60
#: the longest it may take to stop after SIGTERM
STOP_SECONDS = 30


@attrs.frozen
class ServeProcess:
    """A running ``qmux serve``: its URL and its process."""

    url: str
    process: subprocess.Popen[str]


@contextmanager
def serve_process(folder: Path, config: str) -> Iterator[ServeProcess]:
    """``qmux serve --config folder/qmux.toml`` with `config` as the file, its log as JSON on stderr (dropped)."""
    path = folder / "qmux.toml"
    path.write_text(config)
    process = subprocess.Popen(
        [sys.executable, "-m", "qmux", "serve", "--config", str(path), "--log-format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        started, _, _ = select.select([process.stdout], [], [], START_SECONDS)
        assert started, f"qmux serve did not start within {START_SECONDS} s"
        line = process.stdout.readline()
        assert line.startswith("qmux serving on http://127.0.0.1:"), line
        yield ServeProcess(line.split()[-1], process)
    finally:
        end_process(process, signal.SIGTERM, STOP_SECONDS)


def end_process(process: subprocess.Popen[str], signum: signal.Signals, timeout: float) -> int:
    """Send `signum` unless it has ended, wait up to `timeout` (then SIGKILL), close its stdout;
    its exit status."""
    if process.poll() is None:
        process.send_signal(signum)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=STOP_SECONDS)
    finally:
        if process.stdout is not None:
            process.stdout.close()
