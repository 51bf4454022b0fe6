"""Reading a config file: the TOML text, then its tables structured into attrs classes."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from typing import Any, TypeVar

from cattrs.errors import BaseValidationError

from .._core import InvalidInputError
from ._converter import TableError, converter
from ._errors import config_error

__all__ = ["read_toml", "structure"]

_T = TypeVar("_T")


def read_toml(path: str | os.PathLike[str], *, what: str) -> dict[str, Any]:
    """The parsed document at `path`; `what` names the file in errors ("config file")."""
    source = os.fspath(path)
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise InvalidInputError(f"no {what} at {source!r}") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read the {what} {source!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"{source}: not valid TOML: {exc}") from None


def structure(document: Mapping[str, Any], cls: type[_T], *, source: str) -> _T:
    """`document` read into `cls`, or one `InvalidInputError` that names `source` and every mistake."""
    try:
        return converter.structure(document, cls)
    except (BaseValidationError, TableError, InvalidInputError) as exc:
        raise config_error(exc, source) from None
