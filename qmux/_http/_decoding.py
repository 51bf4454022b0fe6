"""A request's body and query string, decoded and checked against its route's schemas.

What is refused and how: a body of the wrong media type (415), one that is not JSON (400), one
that does not fit the route's struct (422, naming the field), or nests deeper than
`MAX_JSON_DEPTH` (422, before the parser recurses into it); a query parameter given twice, or
that does not fit (422). A parameter or form field whose schema type is a list may repeat. A
body or query on a route that takes none is refused where the front door's dialect is strict,
and ignored where it is not. Unknown fields are the schema's affair (``forbid_unknown_fields``).
"""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Iterable
from typing import Any, Final

import msgspec
import msgspec.inspect

from .._core import InvalidInputError
from ._dialect import Dialect
from ._limits import check_json_depth
from ._messages import HttpError
from ._routing import Route

__all__ = ["decode_body", "decode_query"]

_JSON: Final = "application/json"
_FORM: Final = "application/x-www-form-urlencoded"


def decode_body(raw: bytes, content_type: str | None, route: Route, dialect: Dialect) -> Any:
    """The body as ``route.body`` (``None`` for a route that takes none)."""
    kind = route.body
    if kind is None:
        if dialect.strict and raw.strip():
            raise HttpError(
                400, InvalidInputError(f"{route.method} {route.path} takes no body"), code="unexpected_body"
            )
        return None
    media = (content_type or _JSON).split(";")[0].strip().lower()
    if media == _FORM and dialect.forms:
        return _convert(_fields(_form_pairs(raw), kind, "form field", "invalid_body"), kind, "body", "invalid_body")
    if media != _JSON:
        allowed = f"{_JSON} or {_FORM}" if dialect.forms else _JSON
        raise HttpError(
            415, InvalidInputError(f"the body must be {allowed}, not {media}"), code="unsupported_media_type"
        )
    if not raw.strip():
        raise HttpError(400, InvalidInputError("this request needs a JSON body"), code="malformed_json")
    check_json_depth(raw)
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise HttpError(422, InvalidInputError(f"invalid body: {exc}"), code="invalid_body") from exc
    except msgspec.DecodeError as exc:
        raise HttpError(400, InvalidInputError(f"the body is not valid JSON: {exc}"), code="malformed_json") from exc


def decode_query(query_string: bytes, route: Route, dialect: Dialect) -> Any:
    """The query string as ``route.query`` (``None`` for a route that takes none)."""
    kind = route.query
    if kind is None and not (dialect.strict and query_string):
        return None  # nothing to read: not parsed at all (IBM's client polls with a query it ignores)
    pairs = urllib.parse.parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    if kind is None:
        if pairs:
            raise HttpError(
                422,
                InvalidInputError(f"{route.method} {route.path} takes no query parameters; got {pairs[0][0]!r}"),
                code="invalid_query",
            )
        return None
    return _convert(_fields(pairs, kind, "query parameter", "invalid_query"), kind, "query", "invalid_query")


def _form_pairs(raw: bytes) -> list[tuple[str, str]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HttpError(400, InvalidInputError(f"the form body is not UTF-8: {exc}"), code="malformed_form") from exc
    return urllib.parse.parse_qsl(text, keep_blank_values=True)


def _fields(pairs: Iterable[tuple[str, str]], kind: type[msgspec.Struct], what: str, code: str) -> dict[str, Any]:
    """Name-value pairs as an object: repeatable (list-typed) fields as lists, others at most once."""
    repeatable = _list_fields(kind)
    values: dict[str, Any] = {}
    for key, value in pairs:
        if key in repeatable:
            values.setdefault(key, []).append(value)
        elif key in values:
            raise HttpError(422, InvalidInputError(f"{what} {key!r} is given twice"), code=code)
        else:
            values[key] = value
    return values


def _convert(values: dict[str, Any], kind: type[msgspec.Struct], what: str, code: str) -> Any:
    """Text values as `kind`'s typed fields (``"true"`` as a bool, ``"3"`` as a number)."""
    try:
        return msgspec.convert(values, kind, strict=False)
    except msgspec.ValidationError as exc:
        noun = "query parameter" if what == "query" else "field"
        message = str(exc).replace("Object contains unknown field", f"unknown {noun}")
        raise HttpError(422, InvalidInputError(f"invalid {what}: {message}"), code=code) from exc


@functools.cache
def _list_fields(kind: type[msgspec.Struct]) -> frozenset[str]:
    info = msgspec.inspect.type_info(kind)
    assert isinstance(info, msgspec.inspect.StructType)
    return frozenset(field.encode_name for field in info.fields if isinstance(field.type, msgspec.inspect.ListType))
