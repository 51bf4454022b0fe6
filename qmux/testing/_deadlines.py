"""Virtual time up to a session's own deadlines: just before (or after) its ITTL or its max_time.

The deadlines are read from what the session reports, ``details()`` (SPEC S18), so these helpers
work the same on a local session and on one reached over HTTP in the same Trio run:

- the session's "now" is ``started_at + max_time - active_timeout`` (``active_timeout`` is the
  max_time left, counted at the moment ``details()`` answered);
- its ITTL runs out at ``last_job_completed + interactive_timeout`` (SPEC S8, S9);
- its max_time runs out ``active_timeout`` seconds after that "now" (SPEC S10).

Timestamps travel as ISO-8601 strings with microseconds, so a deadline is known to within a few
microseconds; the default margin, one millisecond, is far wider than that.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Final, Protocol

import trio

import qmux

__all__ = [
    "MARGIN",
    "ittl_deadline",
    "just_after_ittl",
    "just_after_max_time",
    "just_before_ittl",
    "just_before_max_time",
    "max_time_deadline",
]

#: how far before or after a deadline the ``just_*`` helpers stop, in seconds
MARGIN: Final = 0.001
_READS: Final = 3


class HasDetails(Protocol):
    """A session, local or remote: anything that reports ``details()`` as qmux does (SPEC S18)."""

    async def details(self) -> dict[str, Any]: ...


async def ittl_deadline(session: HasDetails) -> float:
    """The Trio time at which `session` is deactivated if no job of it arrives (SPEC S8, S9).

    The session must be idle on its backend: active, with its last job finished. That is
    exact for a backend that runs one job at a time (a QPU); on one that runs several, wait for
    every job of the session to finish first.
    """
    details, now, wall_now = await _read(session)
    if details["state"] != "active":
        raise AssertionError(
            f"session {details['id']} has no ITTL running: it is {details['state']!r}, and the ITTL "
            "runs only while a session is active with no job left to run (SPEC S8)"
        )
    completed, started = details["last_job_completed"], details["last_job_started"]
    if completed is None or _instant(completed) < _instant(started):
        raise AssertionError(
            f"session {details['id']} has a job running (last started {started}, last completed {completed}): "
            "its ITTL starts when its last job finishes (SPEC S8)"
        )
    runs_out = _instant(completed) + dt.timedelta(seconds=float(details["interactive_timeout"]))
    return now + (runs_out - wall_now).total_seconds()


async def max_time_deadline(session: HasDetails) -> float:
    """The Trio time at which `session`'s max_time runs out and it is closed (SPEC S10)."""
    details, now, _ = await _read(session)
    return now + float(details["active_timeout"])


async def just_before_ittl(session: HasDetails, *, margin: float = MARGIN) -> float:
    """Sleep until `margin` seconds before `session`'s ITTL runs out; return that deadline (Trio time)."""
    return await _before(await ittl_deadline(session), margin, "its ITTL runs out")


async def just_after_ittl(session: HasDetails, *, margin: float = MARGIN) -> float:
    """Sleep until `margin` seconds after `session`'s ITTL ran out (it is then deactivated); return the deadline."""
    return await _after(await ittl_deadline(session), margin)


async def just_before_max_time(session: HasDetails, *, margin: float = MARGIN) -> float:
    """Sleep until `margin` seconds before `session`'s max_time runs out; return that deadline (Trio time)."""
    return await _before(await max_time_deadline(session), margin, "its max_time runs out")


async def just_after_max_time(session: HasDetails, *, margin: float = MARGIN) -> float:
    """Sleep until `margin` seconds after `session`'s max_time ran out (it is then closed); return the deadline."""
    return await _after(await max_time_deadline(session), margin)


async def _before(deadline: float, margin: float, what: str) -> float:
    _check_margin(margin)
    left = deadline - trio.current_time()
    if left < margin:
        raise AssertionError(f"only {left:.6f} s are left before {what}, less than the margin of {margin} s")
    await trio.sleep_until(deadline - margin)
    return deadline


async def _after(deadline: float, margin: float) -> float:
    _check_margin(margin)
    await trio.sleep_until(max(deadline + margin, trio.current_time()))
    return deadline


def _check_margin(margin: float) -> None:
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 < margin < math.inf:
        raise qmux.InvalidInputError(f"margin={margin!r}: expected a positive number of seconds")


async def _read(session: HasDetails) -> tuple[dict[str, Any], float, dt.datetime]:
    """``details()``, the Trio time it describes, and the session's wall-clock "now" at that time.

    Only a started session that is not closed tells its "now" (through ``active_timeout``).
    """
    for _ in range(_READS):
        before = trio.current_time()
        details = await session.details()
        if trio.current_time() == before:
            break
    # on a real clock the read takes a little time; `before` is then within that of the truth
    if details["state"] == "closed":
        raise AssertionError(f"session {details['id']} is closed ({details.get('closed_reason')}): no deadline is left")
    if details["started_at"] is None:
        raise AssertionError(f"session {details['id']} has not started: its clocks start with its first job (SPEC S3)")
    elapsed = float(details["max_time"]) - float(details["active_timeout"])
    return details, before, _instant(details["started_at"]) + dt.timedelta(seconds=elapsed)


def _instant(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso)
