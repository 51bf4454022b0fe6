"""Listing in pages over HTTP (SPEC V1): the cursor, and the page of a core listing.

The core lists newest first by a key, ``(created, id)``, and goes on strictly after a given key
(``start_after``). A page asks the core for one item more than it shows: if that one exists, the
page's cursor is the key of the last item shown, and the next page starts strictly after it. A
key orders items created at the same instant as well, so pages neither skip nor repeat an item,
whatever is created or ends between two requests.

A cursor is opaque to clients (base64 of the key); a malformed one is refused as bad input.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

from attrs import frozen

from .._core import InvalidInputError, Job, Session

__all__ = ["Key", "Page", "decode_cursor", "encode_cursor", "job_key", "page_of", "parse_instant", "session_key"]

T = TypeVar("T")
#: where an item sits in a listing: when it was created (UTC, to the microsecond) and its id
Key = tuple[dt.datetime, str]


@frozen
class Page(Generic[T]):
    items: list[T]
    #: where the next page starts, or None after the last
    cursor: str | None


def encode_cursor(key: Key) -> str:
    created, ident = key
    raw = f"{created.astimezone(dt.UTC).isoformat(timespec='microseconds')}|{ident}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None) -> Key | None:
    """The key a cursor of `encode_cursor` names; ``None`` for none."""
    if cursor is None:
        return None
    try:
        created, ident = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|", 1)
        key = (dt.datetime.fromisoformat(created), ident)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInputError(
            f"cursor={cursor!r} is not a cursor this server gave: pass the 'next' of the previous page as it was"
        ) from None
    if key[0].tzinfo is None:
        raise InvalidInputError(f"cursor={cursor!r} is not a cursor this server gave")
    return key


async def page_of(items: AsyncIterator[T], size: int, key: Callable[[T], Awaitable[Key]]) -> Page[T]:
    """The first `size` of `items` (which holds at most one more), and the cursor after them if there are more."""
    taken = [item async for item in items]
    if len(taken) <= size:
        return Page(taken, None)
    shown = taken[:size]
    return Page(shown, encode_cursor(await key(shown[-1])))


async def session_key(session: Session) -> Key:
    """A session's key: when it was opened (its first timestamp) and its id."""
    opened = (await session.details())["timestamps"][0]["timestamp"]
    return dt.datetime.fromisoformat(opened), session.session_id


async def job_key(job: Job) -> Key:
    """A job's key: when it was created and its id."""
    created = (await job.metrics())["timestamps"]["created"]
    return dt.datetime.fromisoformat(created), job.job_id


def parse_instant(text: str | None, name: str) -> dt.datetime | None:
    """An ISO-8601 query value as a datetime; one without an offset stays naive, for the core to refuse."""
    if text is None:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"{name}={text!r} is not an ISO-8601 date and time; use e.g. 2026-11-24T13:00:00+00:00"
        ) from None
