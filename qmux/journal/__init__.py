"""Journal stores: where a service keeps every accepted session and job, durable before it is acknowledged.

``open_service(journal=...)`` names one with `open_store`'s forms: a SQLite file's path (or a
``sqlite:`` URL), a PostgreSQL URL (``postgresql://...``, with the ``postgres`` extra), or
``memory:``; any object with the `JournalStore` interface can stand in. Stores see only the
core's snapshots (`SessionSnapshot`, `JobSnapshot`), never its actors.

`BackendLeases` are the ownership of backends by nodes that share one PostgreSQL database, and
the fence of their `PostgresStore`: groundwork for running several qmux nodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._core import ErrorSnapshot, JobSnapshot, JournalStore, SessionSnapshot
from ._memory import MemoryStore
from ._open import JOURNAL_FORMS, open_store
from ._sqlite import SQLiteStore

if TYPE_CHECKING:
    from ._leases import BackendLeases, Lease
    from ._postgres import PostgresStore

__all__ = [
    "JOURNAL_FORMS",
    "BackendLeases",
    "ErrorSnapshot",
    "JobSnapshot",
    "JournalStore",
    "Lease",
    "MemoryStore",
    "PostgresStore",
    "SQLiteStore",
    "SessionSnapshot",
    "open_store",
]


def __getattr__(name: str) -> Any:
    """The PostgreSQL names are imported on first use: psycopg is an optional extra (``qmux[postgres]``)."""
    if name == "PostgresStore":
        from ._postgres import PostgresStore

        return PostgresStore
    if name in ("BackendLeases", "Lease"):
        from . import _leases

        return getattr(_leases, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
