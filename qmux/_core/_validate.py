"""attrs validators whose messages say what was wrong and what is allowed."""

from __future__ import annotations

import math
from typing import Any

import attrs

from ._errors import InvalidInputError

__all__ = [
    "check_flag",
    "check_id",
    "check_options",
    "check_positive_int",
    "check_program_id",
    "non_negative_int",
    "non_negative_seconds",
    "positive_int",
    "positive_seconds",
]

_MAX_NAME = 256


def positive_seconds(_instance: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InvalidInputError(f"{attribute.name}={value!r} must be a positive, finite number of seconds")


def non_negative_seconds(_instance: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InvalidInputError(f"{attribute.name}={value!r} must be a finite number of seconds, 0 or more")


def positive_int(_instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    check_positive_int(value, name=attribute.name)


def non_negative_int(_instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"{attribute.name}={value!r} must be a whole number, 0 or more")


def check_positive_int(value: object, *, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInputError(f"{name}={value!r} must be a positive whole number")
    return value


def check_id(value: object, *, name: str) -> str:
    """An id or a name: a non-empty string of at most 256 characters."""
    if not isinstance(value, str) or not value or len(value) > _MAX_NAME:
        raise InvalidInputError(f"{name}={value!r} must be a non-empty string of at most {_MAX_NAME} characters")
    return value


def check_program_id(value: object) -> str:
    return check_id(value, name="program_id")


def check_options(value: object) -> dict[str, Any]:
    """Job options: a mapping with string keys, or ``None`` for none."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise InvalidInputError(f"options={value!r} must be a dict with string keys, or None")
    return dict(value)


def check_flag(value: object, *, name: str, optional: bool = False) -> bool | None:
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        allowed = "True, False or None" if optional else "True or False"
        raise InvalidInputError(f"{name}={value!r} must be {allowed}")
    return value
