"""Test your own session logic on virtual time: what your code does when a session is deactivated,
when max_time runs out, when a backend fails transiently, when a job waits in line.

- **Backends you script** (`_scripted`): `ScriptedBackend` and `qpu` run jobs that take given
  times, fail, fail transiently (`TransientBackendError`), hang, or return given values, in
  order (``script=[job(3), job(fail="boom")]``) or by input (``session.run("x", job(3))``), and
  record every execution.
- **Deadlines** (`_deadlines`): `just_before_ittl`, `just_after_ittl`, `just_before_max_time`,
  `just_after_max_time` move virtual time to a session's own deadlines, read from its
  ``details()``; `ittl_deadline` and `max_time_deadline` tell them.
- **History** (`_history`): `history` and `assert_history` over ``details()["timestamps"]``.
- **Services** (`_services`): `local_service`, `remote_service` and `connect_in_memory` (the HTTP
  API in memory, with the ``server`` extra).
- **pytest fixtures** (`_plugin`, registered as the ``qmux`` pytest plugin): ``qmux_service``,
  ``qmux_remote_service``, ``qmux_any_service`` (both ways), ``qmux_service_factory``, and
  ``qmux_backends`` / ``qmux_settings`` to override. ``pytest --fixtures`` describes them.

Everything here uses qmux's public API only, so it tests your code against the same rules your
users get (SPEC.md).
"""

from __future__ import annotations

from ._deadlines import (
    MARGIN,
    ittl_deadline,
    just_after_ittl,
    just_after_max_time,
    just_before_ittl,
    just_before_max_time,
    max_time_deadline,
)
from ._history import TOLERANCE, StateChange, assert_history, history
from ._scripted import Execution, ScriptedBackend, TransientBackendError, job, qpu
from ._services import AnyService, ServiceFactory, connect_in_memory, local_service, remote_service

__all__ = [
    "MARGIN",
    "TOLERANCE",
    "AnyService",
    "Execution",
    "ScriptedBackend",
    "ServiceFactory",
    "StateChange",
    "TransientBackendError",
    "assert_history",
    "connect_in_memory",
    "history",
    "ittl_deadline",
    "job",
    "just_after_ittl",
    "just_after_max_time",
    "just_before_ittl",
    "just_before_max_time",
    "local_service",
    "max_time_deadline",
    "qpu",
    "remote_service",
]
