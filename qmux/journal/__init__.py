"""The journal: every accepted session and job, durable before it is acknowledged.

``open_service(journal="qmux.db")`` keeps it in a SQLite file and recovers from it on start;
any object with the `JournalStore` interface can stand in for SQLite.
"""

from __future__ import annotations

from ._journal import Journal, Ticket
from ._rows import ErrorRow, JobRow, SessionRow
from ._store import JournalStore, MemoryStore, SQLiteStore

__all__ = ["ErrorRow", "JobRow", "Journal", "JournalStore", "MemoryStore", "SQLiteStore", "SessionRow", "Ticket"]
