"""Backends that ship with qmux: simulated devices that run in process."""

from __future__ import annotations

from ._local import LocalBackend, Program, default_backends

__all__ = ["LocalBackend", "Program", "default_backends"]
