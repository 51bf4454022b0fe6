"""Journal stores: where a service keeps every accepted session and job, durable before it is acknowledged.

``open_service(journal="qmux.db")`` keeps them in a SQLite file and recovers from it on start;
any object with the `JournalStore` interface can stand in for SQLite. Stores see only the core's
snapshots (`SessionSnapshot`, `JobSnapshot`), never its actors.
"""

from __future__ import annotations

from .._core import ErrorSnapshot, JobSnapshot, JournalStore, SessionSnapshot
from ._store import MemoryStore, SQLiteStore

__all__ = ["ErrorSnapshot", "JobSnapshot", "JournalStore", "MemoryStore", "SQLiteStore", "SessionSnapshot"]
