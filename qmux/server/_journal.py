"""The server's journal, watched: how its writes go (for ``/readyz``) and what it recovered (for metrics).

The core writes through a `qmux.JournalStore` and says nothing of it to the front door. So
``qmux serve`` hands the core its store wrapped in a `WatchedJournal`, which passes every call
through unchanged and remembers two things on the way:

- whether the latest write failed, and why. A quiet journal (nothing to write) is checked with
  a *probe*: an empty batch through the same store (SQLite: ``BEGIN IMMEDIATE`` then commit,
  which a read-only file or database refuses), serialized with the real writes;
- the sessions and jobs its `load` returned unfinished when the service recovered from it, so
  that the metrics follow the work a restart brought back as well as the work taken since.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from typing import final

from attrs import define, field

from .._core import JobSnapshot, JournalStore, SessionSnapshot
from .._http import Taken

__all__ = ["WatchedJournal", "watched_journal"]

_UNFINISHED = ("QUEUED", "RUNNING")


@final
@define(eq=False)
class WatchedJournal:
    """A `JournalStore` that passes every call to `store` and remembers how its writes went."""

    store: JournalStore
    #: real writes attempted so far (probes not counted): a reader sees whether any came since
    writes: int = field(default=0, init=False)
    #: why the latest write, real or probe, failed; ``None`` if it succeeded (or none was made)
    last_error: str | None = field(default=None, init=False)
    #: the open sessions and unfinished jobs `load` returned (the work a restart brings back)
    recovered: list[Taken] = field(factory=list, init=False)
    #: one write at a time: a probe must not interleave with a batch on the same connection
    _lock: threading.Lock = field(factory=threading.Lock, init=False)

    @property
    def blocking(self) -> bool:
        return self.store.blocking

    def write(self, sessions: Sequence[SessionSnapshot], jobs: Sequence[JobSnapshot]) -> None:
        with self._lock:
            try:
                self._write(sessions, jobs)
            finally:
                self.writes += 1  # after: a reader that sees the count sees this write's outcome

    def probe(self) -> str | None:
        """Write an empty batch: why the store refused it, or ``None``. Blocks if the store does."""
        with self._lock, contextlib.suppress(Exception):  # why is in `last_error`
            self._write((), ())
        return self.last_error

    def _write(self, sessions: Sequence[SessionSnapshot], jobs: Sequence[JobSnapshot]) -> None:
        try:
            self.store.write(sessions, jobs)
        except Exception as exc:  # the journal turns it into a StorageError; we only note why
            self.last_error = f"{type(exc).__name__}: {exc}"
            raise
        self.last_error = None

    def load(self, *, retain_finished: int) -> tuple[list[SessionSnapshot], list[JobSnapshot]]:
        sessions, jobs = self.store.load(retain_finished=retain_finished)
        self.recovered = [
            Taken("session", row.session_id, row.backend, row.owner or "") for row in sessions if row.state != "closed"
        ] + [Taken("job", row.job_id, row.backend, row.owner or "") for row in jobs if row.status in _UNFINISHED]
        return sessions, jobs

    def close(self) -> None:
        self.store.close()


def watched_journal(journal: str | os.PathLike[str] | None) -> WatchedJournal | None:
    """The journal `journal` names (a path or a URL: ``qmux.journal.open_store``), watched; ``None`` for none."""
    if journal is None:
        return None
    from ..journal import open_store

    return WatchedJournal(open_store(journal))
