"""Durations as users write them ("25m", "1h30m", "90s", "2h", or seconds) and back."""

from __future__ import annotations

import math
import re

from ._errors import InvalidInputError

__all__ = ["format_duration", "parse_duration"]

_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}
_DURATION = re.compile(r"(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?")
_ALLOWED = "a positive number of seconds or a string such as '90s', '25m', '2h' or '1h30m'"


def parse_duration(value: object, *, name: str = "duration") -> float:
    """Return `value` in seconds, or raise `InvalidInputError` naming it and what is allowed.

    Only positive, finite durations exist here: a zero or negative time limit is always a
    mistake, and saying so at once beats a session that ends before it starts.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidInputError(f"{name}={value!r} is not a duration; use {_ALLOWED}")
    if isinstance(value, str):
        text = value.strip().lower()
        match = _DURATION.fullmatch(text)
        if not text or match is None or not any(match.groups()):
            raise InvalidInputError(f"{name}={value!r} is not a duration; use {_ALLOWED}")
        seconds = sum(float(part) * _UNIT_SECONDS[unit] for unit, part in match.groupdict().items() if part)
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidInputError(f"{name}={value!r} must be positive and finite; use {_ALLOWED}")
    return seconds


def format_duration(seconds: float) -> str:
    """Render seconds the way `parse_duration` reads them: 5400 -> '1h30m'."""
    whole = round(seconds)
    if whole != seconds or whole <= 0:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts)
