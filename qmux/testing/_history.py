"""A session's history: the state changes ``details()["timestamps"]`` lists, and an assertion on them.

`assert_history` compares the states a session went through (``open``, ``active``,
``inactive``, ``closed``; SPEC S18), optionally with the seconds since it was opened, and on a
mismatch shows the whole actual history with its times, so a failing test says what happened.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from types import EllipsisType
from typing import Final

from attrs import frozen

import qmux

from ._deadlines import HasDetails

__all__ = ["TOLERANCE", "StateChange", "assert_history", "history"]

#: how far an expected time may be from the reported one, in seconds (timestamps carry microseconds)
TOLERANCE: Final = 1e-5

Expected = str | tuple[str, float]


@frozen
class StateChange:
    """One entry of a session's history."""

    #: the state entered: ``open``, ``active``, ``inactive`` or ``closed``
    status: str
    #: when, in UTC, as the session reported it
    at: dt.datetime
    #: seconds since the session was opened (its first entry)
    seconds: float

    def __str__(self) -> str:
        stamp = self.at.isoformat(timespec="microseconds").replace("+00:00", "Z")
        return f"{self.seconds:+14.6f} s  {self.status:<9} {stamp}"


async def history(session: HasDetails) -> list[StateChange]:
    """The state changes of `session`, oldest first, timed from its opening."""
    entries = (await session.details())["timestamps"]
    stamps = [(entry["status"], dt.datetime.fromisoformat(entry["timestamp"])) for entry in entries]
    if not stamps:
        return []
    opened = stamps[0][1]
    return [StateChange(status, at, (at - opened).total_seconds()) for status, at in stamps]


async def assert_history(
    session: HasDetails,
    expected: Sequence[Expected | EllipsisType],
    *,
    tolerance: float = TOLERANCE,
) -> None:
    """Assert that `session` went through exactly the `expected` states, in order.

    Each expected entry is a state (``"inactive"``) or a state and the seconds since the session
    was opened (``("inactive", 12)``, within `tolerance`). A final ``...`` accepts any later
    entries: ``["open", "active", ...]`` checks how the history begins.
    """
    if isinstance(expected, str):
        raise qmux.InvalidInputError(f"expected={expected!r}: give a list of states, e.g. ['open', 'active']")
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 <= tolerance < math.inf:
        raise qmux.InvalidInputError(f"tolerance={tolerance!r}: expected a number of seconds, 0 or more")
    wanted = list(expected)
    open_ended = bool(wanted) and wanted[-1] is Ellipsis
    if open_ended:
        wanted.pop()
    checks = [_expectation(entry, index) for index, entry in enumerate(wanted)]
    actual = await history(session)
    shown = actual[: len(checks)] if open_ended else actual
    if len(shown) == len(checks) and all(
        _matches(change, check, tolerance) for change, check in zip(shown, checks, strict=True)
    ):
        return
    details = await session.details()
    lines = [
        f"session {details['id']} history differs",
        f"expected: {', '.join(_describe(check) for check in checks)}{', ...' if open_ended else ''}",
        "actual (seconds since opened, state, UTC time):",
        *(f"  {change}" for change in actual),
    ]
    raise AssertionError("\n".join(lines))


def _expectation(entry: object, index: int) -> tuple[str, float | None]:
    match entry:
        case str(status):
            return status, None
        case (str(status), int() | float() as seconds) if not isinstance(seconds, bool):
            return status, float(seconds)
    raise qmux.InvalidInputError(
        f"expected[{index}]={entry!r}: give a state ('active') or a state and seconds since opened (('active', 5))"
    )


def _matches(change: StateChange, check: tuple[str, float | None], tolerance: float) -> bool:
    status, seconds = check
    return change.status == status and (seconds is None or abs(change.seconds - seconds) <= tolerance)


def _describe(check: tuple[str, float | None]) -> str:
    status, seconds = check
    return status if seconds is None else f"{status} at {seconds:g} s"
