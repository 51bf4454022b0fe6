"""Backends that ship with qmux: simulated devices that run in process, and other qmux servers.

`default_backends()` is the embedded set ``open_service()`` serves; `load_backends(path)` reads
your own set from a TOML file (its schema is in `qmux.backends._config`).
"""

from __future__ import annotations

from ._config import load_backends
from ._local import LocalBackend, Program, default_backends
from ._remote import RemoteBackend

__all__ = ["LocalBackend", "Program", "RemoteBackend", "default_backends", "load_backends"]
