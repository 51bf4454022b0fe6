"""attrs validators whose messages say what was wrong and what is allowed."""

from __future__ import annotations

import math
from typing import Any

import attrs

from ._errors import InvalidInputError

__all__ = ["non_negative_seconds", "positive_int", "positive_seconds"]


def positive_seconds(_instance: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InvalidInputError(f"{attribute.name}={value!r} must be a positive, finite number of seconds")


def non_negative_seconds(_instance: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InvalidInputError(f"{attribute.name}={value!r} must be a finite number of seconds, 0 or more")


def positive_int(_instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInputError(f"{attribute.name}={value!r} must be a positive whole number")
