"""Journal stores: where a service keeps every accepted session and job, durable before it is acknowledged.

``open_service(journal=...)`` names one with `open_store`'s forms: a SQLite file's path (or a
``sqlite:`` URL), a PostgreSQL URL (``postgresql://...``, with the ``postgres`` extra), or
``memory:``; any object with the `JournalStore` interface can stand in. Stores see only the
core's snapshots (`SessionSnapshot`, `JobSnapshot`), never its actors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._core import ErrorSnapshot, JobSnapshot, JournalStore, SessionSnapshot
from ._memory import MemoryStore
from ._open import JOURNAL_FORMS, open_store
from ._sqlite import SQLiteStore

if TYPE_CHECKING:
    from ._postgres import PostgresStore

__all__ = [
    "JOURNAL_FORMS",
    "ErrorSnapshot",
    "JobSnapshot",
    "JournalStore",
    "MemoryStore",
    "PostgresStore",
    "SQLiteStore",
    "SessionSnapshot",
    "open_store",
]


def __getattr__(name: str) -> Any:
    """`PostgresStore` is imported on first use: psycopg is an optional extra (``qmux[postgres]``)."""
    if name == "PostgresStore":
        from ._postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
