"""Schema versions: every store's tables are created and migrated by qmux, in order, never guessed.

A store keeps an ordered list of migrations; the number of migrations applied is its schema
version, recorded in a ``qmux_schema`` table (one row per applied version). Opening a journal
applies the ones it lacks; a journal written by a newer qmux is refused, since this code cannot
know what the newer schema means.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from .._core import StorageError

__all__ = ["pending_migrations"]

M = TypeVar("M")


def pending_migrations(found: int, migrations: Sequence[M], where: str) -> list[tuple[int, M]]:
    """The migrations a journal at version `found` still needs, each with the version it brings."""
    if found > len(migrations):
        raise StorageError(
            f"the journal {where} has schema version {found}, newer than the {len(migrations)} this qmux "
            "knows: run the qmux release that wrote it (or a newer one), or give this one another journal"
        )
    return list(enumerate(migrations[found:], start=found + 1))
