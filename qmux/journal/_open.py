"""`open_store`: a journal named by a string (a path or a URL), turned into its store."""

from __future__ import annotations

import os
import re

from .._core import InvalidInputError, JournalStore, StorageError
from ._memory import MemoryStore
from ._sqlite import SQLiteStore

__all__ = ["JOURNAL_FORMS", "open_store"]

#: what `open_store` accepts, as error messages and the docs name it
JOURNAL_FORMS = (
    "a SQLite file's path, 'sqlite:///absolute/path.db' or 'sqlite:relative/path.db', "
    "'postgresql://user@host:port/dbname' (or 'postgres://...'), or 'memory:'"
)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


def open_store(journal: str | os.PathLike[str]) -> JournalStore:
    """The store `journal` names: a path or ``sqlite:`` URL (SQLite), ``postgresql://`` or
    ``postgres://`` (PostgreSQL, with the ``postgres`` extra), ``memory:`` (nothing kept past the
    process). ``sqlite:///var/qmux.db`` is the absolute path ``/var/qmux.db``, as a file URL is.
    """
    if isinstance(journal, os.PathLike):
        return SQLiteStore(journal)
    scheme = _SCHEME.match(journal)
    if scheme is None:
        if not journal.strip():
            raise InvalidInputError(f"journal={journal!r} is empty; a journal is {JOURNAL_FORMS}")
        return SQLiteStore(journal)
    kind, rest = scheme.group(1).lower(), journal[scheme.end() :]
    if kind == "sqlite":
        return SQLiteStore(_sqlite_path(journal, rest))
    if kind in ("postgresql", "postgres"):
        return _postgres(journal)
    if kind == "memory" and not rest:
        return MemoryStore()
    raise InvalidInputError(f"journal={journal!r} is not a journal qmux knows; a journal is {JOURNAL_FORMS}")


def _sqlite_path(journal: str, rest: str) -> str:
    if rest.startswith("//"):  # a URL with an authority: only the empty one (this machine) means a file
        authority, slash, path = rest[2:].partition("/")
        if authority or not slash:
            raise InvalidInputError(
                f"journal={journal!r} names a host; a SQLite journal is a local file: "
                "'sqlite:///absolute/path.db' or 'sqlite:relative/path.db'"
            )
        rest = "/" + path
    if not rest.strip("/"):
        raise InvalidInputError(f"journal={journal!r} names no file; a journal is {JOURNAL_FORMS}")
    return rest


def _postgres(url: str) -> JournalStore:
    try:
        from ._postgres import PostgresStore
    except ImportError as exc:
        raise StorageError(
            f"a PostgreSQL journal needs psycopg 3, which is not installed ({exc}): pip install 'qmux[postgres]'"
        ) from exc
    return PostgresStore(url)
