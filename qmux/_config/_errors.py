"""cattrs' exception groups, told as one `InvalidInputError` a user can act on.

cattrs raises a tree: a `ClassValidationError` per table, an `IterableValidationError` per array
or table of tables, each child tagged with a note that says which key or index it came from.
`config_error` walks the tree down to its leaves and writes one line per mistake: where it is,
as the file spells it (``[server]``, ``[backends.fake_x]``, ``[[tenants]] #2``), and what is
wrong and allowed (the validators' own words, which name the key).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from typing import Any

import attrs
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ForbiddenExtraKeysError,
    IterableValidationNote,
)

from .._core import InvalidInputError
from ._converter import TableError, also_accepted

__all__ = ["config_error"]

#: where a mistake is: keys (tables and fields) and indices (arrays of tables), from the top
Path = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def config_error(error: BaseException, source: str) -> InvalidInputError:
    """One error naming `source` and listing every mistake in `error` (a cattrs tree or a leaf)."""
    lines = [f"{_render(path)} {message}" if path else message for path, message in _mistakes(error, ())]
    if len(lines) == 1:
        return InvalidInputError(f"{source}: {lines[0]}")
    return InvalidInputError(f"{source}: {len(lines)} mistakes:\n" + "\n".join(f"  - {line}" for line in lines))


def _mistakes(error: BaseException, path: Path) -> Iterator[tuple[Path, str]]:
    """(the table a mistake is in, what is wrong) for every leaf of `error`."""
    note = _note(error)
    if isinstance(note, AttributeValidationNote):
        path = (*path, note.name)
    elif isinstance(note, IterableValidationNote):
        path = (*path, note.index)
    if isinstance(error, BaseValidationError):
        for child in error.exceptions:
            yield from _mistakes(child, path)
    elif isinstance(error, ForbiddenExtraKeysError):
        yield path, _unknown_keys(error, top_level=not path)
    elif isinstance(error, TableError) or not isinstance(note, AttributeValidationNote):
        yield path, str(error)  # about the table (or array item) as a whole
    elif isinstance(error, KeyError):
        yield path[:-1], _missing(path, note.type)
    elif isinstance(error, InvalidInputError):
        yield path[:-1], str(error)  # a validator's message: it names the key
    else:
        yield path[:-1], f"{note.name}: {error}"


def _note(error: BaseException) -> str | None:
    """The note cattrs attached to `error` when it caught it, if any."""
    for note in reversed(getattr(error, "__notes__", ())):
        if isinstance(note, (AttributeValidationNote, IterableValidationNote)):
            return note
    return None


def _unknown_keys(error: ForbiddenExtraKeysError, *, top_level: bool) -> str:
    extra = ", ".join(repr(key) for key in sorted(error.extra_fields))
    allowed = [a.name for a in attrs.fields(error.cl) if a.init] + list(also_accepted(error.cl))
    what = ("top-level " if top_level else "") + ("keys" if len(error.extra_fields) > 1 else "key")
    return f"unknown {what} {extra}; allowed keys: {', '.join(allowed)}"


def _missing(path: Path, kind: Any) -> str:
    name = _dotted(path)
    if typing.get_origin(kind) is tuple and attrs.has(typing.get_args(kind)[0]):
        return f"no [[{name}]] table; give at least one"
    if isinstance(kind, type) and attrs.has(kind):
        return f"no [{name}] table; it is required"
    return f"{path[-1]} is missing; it is required"


def _render(path: Path) -> str:
    """A table's place as a TOML file spells it: ``[backends.fake_x]``, ``[[tenants]] #2``."""
    parts: list[str] = []
    keys: list[str] = []
    pending = False
    for step in path:
        if isinstance(step, int):
            parts.append(f"[[{'.'.join(keys)}]] #{step + 1}")
            pending = False
        else:
            keys.append(step if _BARE_KEY.fullmatch(step) else _quoted(step))
            pending = True
    if pending:
        parts.append(f"[{'.'.join(keys)}]")
    return " ".join(parts)


def _dotted(path: Path) -> str:
    return ".".join(step if _BARE_KEY.fullmatch(step) else _quoted(step) for step in path if isinstance(step, str))


def _quoted(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
