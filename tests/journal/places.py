"""Where a journal lives in the tests: memory, a SQLite file, a PostgreSQL database.

A `JournalPlace` opens stores on the same storage again and again, as successive processes
would; `CrashingStore` stands for a process that dies: once crashed, nothing it writes lands,
so the next store opened on the place holds exactly what a crash at that instant leaves behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import psycopg
from attrs import define, field, frozen

from qmux.journal import JobSnapshot, JournalStore, MemoryStore, PostgresStore, SessionSnapshot, SQLiteStore

KINDS = ("memory", "sqlite", "postgres")
DURABLE_KINDS = ("sqlite", "postgres")


@frozen
class JournalPlace:
    kind: str
    #: the SQLite file or the PostgreSQL URL ("memory:" for memory)
    target: str
    _memory: MemoryStore = field(factory=MemoryStore)

    def open(self) -> JournalStore:
        """A store on this place, as a (re)started process opens it."""
        if self.kind == "memory":
            return self._memory
        if self.kind == "sqlite":
            return SQLiteStore(self.target)
        return PostgresStore(self.target)

    def sql(self, statement: str) -> None:
        """Run `statement` on the place's database directly, as an operator (or a fault) would."""
        if self.kind == "sqlite":
            import sqlite3

            with sqlite3.connect(self.target) as db:
                db.executescript(statement)
        elif self.kind == "postgres":
            with psycopg.connect(self.target, autocommit=True) as db:
                db.execute(statement.encode())
        else:
            raise AssertionError("a memory journal has no SQL")


def place(kind: str, tmp_path: Path, postgres_url: str | None) -> JournalPlace:
    if kind == "sqlite":
        return JournalPlace(kind, str(tmp_path / "journal.db"))
    if kind == "postgres":
        assert postgres_url is not None
        return JournalPlace(kind, postgres_url)
    return JournalPlace(kind, "memory:")


@define(eq=False)
class CrashingStore:
    """A store whose process can be made to die: after `crash`, its writes never land."""

    store: JournalStore
    crashed: bool = False

    @property
    def blocking(self) -> bool:
        return self.store.blocking

    def crash(self) -> None:
        self.crashed = True

    def write(self, sessions: Sequence[SessionSnapshot], jobs: Sequence[JobSnapshot]) -> None:
        if not self.crashed:
            self.store.write(sessions, jobs)

    def load(self, *, retain_finished: int) -> tuple[list[SessionSnapshot], list[JobSnapshot]]:
        return self.store.load(retain_finished=retain_finished)

    def close(self) -> None:
        self.store.close()
