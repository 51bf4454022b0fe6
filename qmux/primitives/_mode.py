"""Where a primitive sends its jobs: a session, or a backend in job mode (SPEC P3)."""

from __future__ import annotations

from typing import Any

from .._core import BackendHandle, InvalidInputError, Job, Session, current_session

__all__ = ["Mode", "resolve_mode", "submit"]

#: a session, or a backend for job mode
Mode = Session | BackendHandle


def resolve_mode(mode: object, primitive: str) -> Mode:
    """The target of a primitive made with ``mode=mode``.

    ``None`` means the session of the enclosing ``async with Session(...)``, read when the
    primitive is made (as qiskit-ibm-runtime does); outside one there is nothing to guess from.
    """
    if mode is None:
        session = current_session()
        if session is None:
            raise InvalidInputError(
                f"{primitive}() was made outside `async with Session(...)` and without mode=; pass "
                f"mode=session, or mode=service.backend(name) to run in job mode"
            )
        return session
    if isinstance(mode, (Session, BackendHandle)):
        return mode
    raise InvalidInputError(
        f"{primitive}(mode={mode!r}): mode must be a Session, a backend from service.backend(name), or None "
        "inside `async with Session(...)`"
    )


async def submit(mode: Mode, program_id: str, inputs: dict[str, Any]) -> Job:
    """Submit one job to the session (S11: any mix of programs) or, in job mode, to the backend."""
    return await mode.run(program_id, inputs)
