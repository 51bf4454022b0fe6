"""The validators, one family: the rules for the values users give qmux, in words they can act on.

Two forms. The attrs validators (``field(validator=positive_int)``) guard every
attrs class a user fills in, by hand or from a config file (``qmux._config`` runs them key by
key as it reads a file, so that every mistake in a file is reported at once); the ``check_*``
functions guard plain arguments. Each raises `InvalidInputError` whose message names the value
(``num_qubits=0``) and says what is allowed. An attrs validator here never reads the instance:
the config reader calls it before there is one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sized
from typing import Any

import attrs

from ._errors import InvalidInputError

__all__ = [
    "at_least_one",
    "check_flag",
    "check_id",
    "check_options",
    "check_positive_int",
    "check_program_id",
    "check_tags",
    "flag",
    "identifier",
    "matches",
    "non_empty_text",
    "non_negative_int",
    "non_negative_seconds",
    "positive_int",
    "positive_seconds",
    "tcp_port",
]

#: an attrs validator: ``validator(instance, attribute, value)``, raising `InvalidInputError`
Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]

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


def tcp_port(_instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise InvalidInputError(f"{attribute.name}={value!r} must be a TCP port, 0-65535 (0: any free port)")


def flag(_instance: Any, attribute: attrs.Attribute[bool], value: bool) -> None:
    check_flag(value, name=attribute.name)


def non_empty_text(_instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{attribute.name}={value!r} must be a non-empty string")


def identifier(_instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    """A name or an id (`check_id`)."""
    check_id(value, name=attribute.name)


def matches(pattern: re.Pattern[str], allowed: str, *, show_value: bool = True) -> Validator:
    """A string that `pattern` matches in full; `allowed` says which in words.

    ``show_value=False`` keeps the value out of the message, for a field that a user might
    fill with a secret by mistake (a token where its digest belongs).
    """

    def validate(_instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            shown = f"{attribute.name}={value!r}" if show_value else attribute.name
            raise InvalidInputError(f"{shown} must be {allowed}")

    return validate


def at_least_one(what: str) -> Validator:
    """A collection that holds at least one item; `what` names an item, as a user provides it."""

    def validate(_instance: Any, attribute: attrs.Attribute[Sized], value: Sized) -> None:
        if not isinstance(value, Sized) or isinstance(value, str):
            raise InvalidInputError(
                f"{attribute.name} must be a collection, not {type(value).__name__}; give at least one {what}"
            )
        if len(value) == 0:
            raise InvalidInputError(f"no {attribute.name}: give at least one {what}")

    return validate


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


MAX_TAGS = 32
MAX_TAG_LENGTH = 128


def check_tags(value: object) -> tuple[str, ...]:
    """Job labels (SPEC T1): an iterable of at most 32 non-empty strings of at most 128 characters."""
    if not value and (value is None or isinstance(value, (list, tuple, set, frozenset))):
        return ()  # None or empty: most jobs have no tags
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise InvalidInputError(f"tags={value!r} must be a list of strings")
    tags = tuple(value)
    if len(tags) > MAX_TAGS or not all(isinstance(t, str) and 0 < len(t) <= MAX_TAG_LENGTH for t in tags):
        raise InvalidInputError(
            f"tags={value!r} must be at most {MAX_TAGS} non-empty strings of at most {MAX_TAG_LENGTH} characters"
        )
    return tuple(dict.fromkeys(tags))  # in order, each once


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
