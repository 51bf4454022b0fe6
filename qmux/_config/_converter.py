"""The one cattrs converter that reads config files into qmux's attrs classes.

What it does beyond cattrs' defaults, and why:

- **Unknown keys are refused** (``forbid_extra_keys``): a typo must not fall back to a default.
- **No coercion.** cattrs would turn ``"5"`` into 5 and ``true`` into 1; here a value reaches
  the class as the file wrote it, and the field's validator (``qmux._core``'s one family) says
  what is wrong and what is allowed.
- **Every validator runs key by key**, as the key is read, so that all the mistakes of a file
  are reported together (attrs alone stops at the first one of a class).
- **Times are durations**: a ``float`` field (or ``float | None``) is seconds, and takes a number
  or a string such as ``"90s"``, ``"25m"`` or ``"1h30m"`` (`qmux.parse_duration`).
- **Shapes are checked**: a nested class or a ``dict`` wants a table, a ``tuple[X, ...]`` an
  array; a value of another TOML type is refused with both types named.

`register_table` adapts one class (extra keys allowed at the top level of a shared file, a hook
of its own for one field, a step that rewrites a table first); every other attrs class is read
by the same rules without being registered.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from .._core import InvalidInputError, parse_duration

__all__ = ["TableError", "also_accepted", "converter", "register_table", "toml_type"]

#: a structure hook, as cattrs calls it: ``hook(value, type)``
Hook = Callable[[Any, Any], Any]
#: a step that rewrites a table before its keys are read (raise `TableError` to refuse it)
Prepare = Callable[[Mapping[str, Any]], Mapping[str, Any]]


class TableError(Exception):
    """A table is wrong as a whole (not a table at all, keys that conflict), rather than one key.

    Raised only while a document is structured; `qmux._config.structure` turns it into an
    `InvalidInputError` that names the table.
    """


converter: Final = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

#: keys a table takes beyond its class's fields, because a `Prepare` step consumes them
_ALSO_ACCEPTED: dict[type, tuple[str, ...]] = {}


def also_accepted(cls: type) -> tuple[str, ...]:
    """The keys a table of `cls` takes besides its fields (for the "allowed keys" of an error)."""
    return _ALSO_ACCEPTED.get(cls, ())


_TOML_TYPES: Final = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (Mapping, "a table"),
    (list, "an array"),
    (dt.datetime, "a date-time"),
    (dt.date, "a date"),
    (dt.time, "a time"),
)


def toml_type(value: object) -> str:
    """What `value` is, in TOML's words: "a string", "a table", "an array"..."""
    for kind, words in _TOML_TYPES:
        if isinstance(value, kind):
            return words
    return f"a {type(value).__name__}"


def _as_written(value: object, _type: object) -> object:
    """No coercion: the field's validator judges the value as the file wrote it."""
    return value


for _kind in (int, bool, str, float):
    converter.register_structure_hook(_kind, _as_written)


def _optional_of(kind: object) -> object:
    """``X`` for ``X | None`` (or ``Optional[X]``), else `kind` itself."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return kind


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _seconds(name: str) -> Hook:
    def read(value: object, _type: object) -> object:
        if _is_number(value):
            return value  # the field's validator judges its range (0 may be allowed) as written
        return parse_duration(value, name=name)

    return read


def _array(name: str, item: object) -> Hook:
    what = f"an array of tables ([[{name}]])" if attrs.has(typing.cast(type, item)) else "an array"

    def read(value: object, kind: Any) -> object:
        if not isinstance(value, list):
            raise InvalidInputError(f"{name} must be {what}, not {toml_type(value)}")
        return converter.structure(value, kind)

    return read


def _table_of(name: str) -> Hook:
    def read(value: object, kind: Any) -> object:
        if not isinstance(value, Mapping):
            raise InvalidInputError(f"{name} must be a table, not {toml_type(value)}")
        return converter.structure(value, kind)

    return read


def _by_type(value: object, kind: Any) -> object:
    return converter.structure(value, kind)


def _attribute_hook(attribute: attrs.Attribute[Any], custom: Hook | None) -> Hook:
    """Read one key by its type (or `custom`), then run the field's validator on the result."""
    kind = attribute.type
    seconds = _optional_of(kind) is float
    read: Hook
    if custom is not None:
        read = custom
    elif seconds:
        read = _seconds(attribute.name)
    elif typing.get_origin(kind) is tuple and typing.get_args(kind)[1:] == (Ellipsis,):
        read = _array(attribute.name, typing.get_args(kind)[0])
    elif typing.get_origin(kind) in (dict, Mapping):
        read = _table_of(attribute.name)
    else:
        read = _by_type
    validator = attribute.validator

    def hook(value: object, _type: object) -> object:
        result = read(value, kind)
        if validator is not None:
            validator(None, attribute, result)
        return float(typing.cast(float, result)) if seconds and _is_number(result) else result

    return hook


def _table_hook(
    cls: Any,
    *,
    forbid_extra_keys: bool = True,
    hooks: Mapping[str, Hook] | None = None,
    prepare: Prepare | None = None,
) -> Hook:
    attrs.resolve_types(cls)
    hooks = dict(hooks or {})
    fields = [attribute for attribute in attrs.fields(cls) if attribute.init]
    unknown = set(hooks) - {attribute.name for attribute in fields}
    assert not unknown, f"{cls.__name__} has no fields {sorted(unknown)}"
    overrides = {a.name: override(struct_hook=_attribute_hook(a, hooks.get(a.name))) for a in fields}
    read_keys = make_dict_structure_fn(
        cls,
        converter,
        _cattrs_forbid_extra_keys=forbid_extra_keys,
        _cattrs_detailed_validation=True,
        **overrides,  # type: ignore[arg-type]  # cattrs types these keyword arguments loosely
    )

    def structure(value: object, _type: object) -> object:
        if not isinstance(value, Mapping):
            raise TableError(f"must be a table, not {toml_type(value)}")
        table = prepare(value) if prepare is not None else value
        return read_keys(table, cls)

    return structure


converter.register_structure_hook_factory(attrs.has, lambda cls: _table_hook(cls))


def register_table(
    cls: type,
    *,
    forbid_extra_keys: bool = True,
    hooks: Mapping[str, Hook] | None = None,
    prepare: Prepare | None = None,
    also_accepts: Sequence[str] = (),
) -> None:
    """Read `cls` with its own adaptations; the other attrs classes need no registration.

    `forbid_extra_keys=False`: a document whose other tables belong to someone else. `hooks`:
    how to read some keys, by field name (the field's validator still runs after). `prepare`:
    rewrites the table before its keys are read; `also_accepts` names the keys it consumes.
    """
    converter.register_structure_hook(
        cls, _table_hook(cls, forbid_extra_keys=forbid_extra_keys, hooks=hooks, prepare=prepare)
    )
    if also_accepts:
        _ALSO_ACCEPTED[cls] = tuple(also_accepts)
