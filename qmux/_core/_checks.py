"""Checks both service front ends make without a round trip: the in-process `Service` and the remote client.

``Session(...)``, ``service.backend(name)`` and ``service.least_busy()`` are synchronous, so a
remote client must answer them from the backend configurations it holds. Keeping the checks
here, as plain functions of those configurations, means a refusal reads the same (type and
words) in process and over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from attrs import frozen

from ._backend import BackendConfig
from ._duration import parse_duration
from ._errors import BackendNotFoundError, BackendUnavailableError, InvalidInputError
from ._handles import BackendHandle
from ._validate import check_flag, check_id, check_positive_int

__all__ = [
    "FAILURE_POLICIES",
    "MODES",
    "BackendDirectory",
    "SessionTerms",
    "check_session_request",
    "find_backend",
    "pick_least_busy",
    "session_max_time",
]

#: the session modes IBM's API knows (SPEC B1)
MODES: Final = ("dedicated", "batch")
#: what a session does when one of its jobs fails (SPEC F1): "continue" is J3
FAILURE_POLICIES: Final = ("continue", "abort")


class BackendDirectory:
    """The backend look-ups of a service front end, answered from the handles it holds (SPEC S1, S6).

    `qmux.Service` holds its own backends; the remote client holds the server's, as of the
    server's last answer. Both answer these synchronously, with the same checks and errors.
    """

    _handles: dict[str, BackendHandle]

    def backends(self) -> list[BackendHandle]:
        return list(self._handles.values())

    def backend(self, name: str) -> BackendHandle:
        return find_backend(self._handles, name)

    def least_busy(
        self, *, operational: bool = True, simulator: bool | None = False, min_num_qubits: int | None = None
    ) -> BackendHandle:
        """The matching backend with the fewest pending jobs (SPEC S6); ``simulator=None``: either."""
        return pick_least_busy(
            self._handles.values(), operational=operational, simulator=simulator, min_num_qubits=min_num_qubits
        )


def find_backend(handles: Mapping[str, BackendHandle], name: object) -> BackendHandle:
    """The handle named `name`, or the error that lists the known names."""
    try:
        return handles[check_id(name, name="backend")]
    except KeyError:
        known = ", ".join(sorted(handles)) or "none"
        raise BackendNotFoundError(f"no backend named {name!r}; known backends: {known}") from None


def pick_least_busy(
    handles: Iterable[BackendHandle], *, operational: bool, simulator: bool | None, min_num_qubits: int | None
) -> BackendHandle:
    """The matching backend with the fewest pending jobs (SPEC S6); ``simulator=None``: either."""
    check_flag(operational, name="operational")
    check_flag(simulator, name="simulator", optional=True)
    if min_num_qubits is not None:
        check_positive_int(min_num_qubits, name="min_num_qubits")
    every = list(handles)
    candidates = [
        handle
        for handle in every
        if handle.config.operational == operational
        and (simulator is None or handle.config.simulator == simulator)
        and (min_num_qubits is None or handle.config.num_qubits >= min_num_qubits)
    ]
    if not candidates:
        raise BackendUnavailableError(
            f"no backend matches operational={operational}, simulator={simulator}, "
            f"min_num_qubits={min_num_qubits}; backends: {', '.join(h.name for h in every) or 'none'}"
        )
    return min(candidates, key=lambda handle: handle.pending_jobs)


@frozen
class SessionTerms:
    """What a session was opened with, checked: the same checks in process and over HTTP."""

    #: seconds (S4)
    max_time: float
    #: "dedicated" or "batch" (B1)
    mode: str = "dedicated"
    #: "continue" (J3) or "abort" (F1)
    failure_policy: str = "continue"
    #: how many jobs it accepts; ``None``: no limit (L1)
    max_jobs: int | None = None

    @property
    def is_batch(self) -> bool:
        return self.mode == "batch"


def check_session_request(
    backend: str,
    config: BackendConfig,
    *,
    max_time: object,
    mode: object = "dedicated",
    failure_policy: object = "continue",
    max_jobs: object = None,
) -> SessionTerms:
    """The checks of SPEC S1, S4, S5, B1, F1 and L1 on opening a session."""
    if not config.operational:
        raise BackendUnavailableError(f"backend {backend!r} is not operational; it opens no sessions (S1)")
    if mode not in MODES:
        raise InvalidInputError(f"mode={mode!r} is not a session mode; use one of {', '.join(MODES)}")
    if failure_policy not in FAILURE_POLICIES:
        raise InvalidInputError(
            f"failure_policy={failure_policy!r} is not a failure policy; use one of {', '.join(FAILURE_POLICIES)}"
        )
    if max_jobs is not None:
        check_positive_int(max_jobs, name="max_jobs")
    assert isinstance(mode, str) and isinstance(failure_policy, str)
    assert max_jobs is None or isinstance(max_jobs, int)
    return SessionTerms(session_max_time(max_time, config, backend), mode, failure_policy, max_jobs)


def session_max_time(max_time: object, config: BackendConfig, backend: str) -> float:
    """A session's max_time in seconds (SPEC S4): the backend's max_ttl unless asked for less."""
    if max_time is None:
        return config.max_ttl
    seconds = parse_duration(max_time, name="max_time")
    if seconds > config.max_ttl:
        raise InvalidInputError(
            f"max_time={max_time!r} ({seconds:g}s) is above the max_ttl of backend {backend!r} "
            f"({config.max_ttl:g}s); use a value in (0, {config.max_ttl:g}] seconds"
        )
    return seconds
