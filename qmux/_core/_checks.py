"""Checks both service front ends make without a round trip: the in-process `Service` and the remote client.

``Session(...)``, ``service.backend(name)`` and ``service.least_busy()`` are synchronous, so a
remote client must answer them from the backend configurations it holds. Keeping the checks
here, as plain functions of those configurations, means a refusal reads the same (type and
words) in process and over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from ._backend import BackendConfig
from ._duration import parse_duration
from ._errors import BackendNotFoundError, BackendUnavailableError, InvalidInputError
from ._handles import BackendHandle
from ._validate import check_flag, check_id, check_positive_int

__all__ = ["MODES", "check_session_request", "find_backend", "pick_least_busy", "session_max_time"]

#: the session modes IBM's API knows; both behave as ``dedicated`` here
MODES: Final = ("dedicated", "batch")


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


def check_session_request(backend: str, config: BackendConfig, *, max_time: object, mode: object) -> float:
    """The checks of SPEC S1, S4 and S5 on opening a session; the session's max_time in seconds."""
    if not config.operational:
        raise BackendUnavailableError(f"backend {backend!r} is not operational; it opens no sessions (S1)")
    if mode not in MODES:
        raise InvalidInputError(f"mode={mode!r} is not a session mode; use one of {', '.join(MODES)}")
    return session_max_time(max_time, config, backend)


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
