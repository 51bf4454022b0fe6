"""The memory store: what a journal does, minus surviving the process (tests, embedded use)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar, final

from .._core import JobSnapshot, SessionSnapshot
from ._rows import is_closed, is_finished

__all__ = ["MemoryStore"]


class _Owned(Protocol):
    @property
    def owner(self) -> str | None: ...


T = TypeVar("T", bound=_Owned)


@final
class MemoryStore:
    """Keeps snapshots in dicts, which hold each id where it was first written (arrival order)."""

    blocking = False

    def __init__(self) -> None:
        self.sessions: dict[str, SessionSnapshot] = {}
        self.jobs: dict[str, JobSnapshot] = {}

    def write(self, sessions: Sequence[SessionSnapshot], jobs: Sequence[JobSnapshot]) -> None:
        self.sessions.update((row.session_id, row) for row in sessions)
        self.jobs.update((row.job_id, row) for row in jobs)

    def load(self, *, retain_finished: int) -> tuple[list[SessionSnapshot], list[JobSnapshot]]:
        return (
            _retained(self.sessions.values(), is_closed, retain_finished),
            _retained(self.jobs.values(), is_finished, retain_finished),
        )

    def close(self) -> None:
        pass


def _retained(rows: Iterable[T], ended: Callable[[T], bool], keep: int) -> list[T]:
    """Every row not `ended`, and each owner's `keep` newest ended rows, in the order given."""
    ordered = list(rows)
    kept_per_owner: dict[str | None, int] = {}
    dropped: set[int] = set()
    for index in range(len(ordered) - 1, -1, -1):  # newest first
        row = ordered[index]
        if ended(row):
            kept = kept_per_owner.get(row.owner, 0)
            if kept < keep:
                kept_per_owner[row.owner] = kept + 1
            else:
                dropped.add(index)
    return [row for index, row in enumerate(ordered) if index not in dropped]
