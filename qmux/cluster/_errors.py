"""How a node of a cluster stops when it loses a lease (no database driver needed to name it)."""

from __future__ import annotations

from .._core import QmuxError

__all__ = ["LeaseLostError", "lease_lost_in"]


class LeaseLostError(QmuxError):
    """This node lost its lease on a backend (taken over, or not renewable in time): it stopped."""


def lease_lost_in(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The `LeaseLostError` that ended a node, out of the exception group its nurseries made."""
    found: BaseException | None = group.subgroup(LeaseLostError)
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0]
    return found
