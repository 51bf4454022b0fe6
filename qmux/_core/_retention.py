"""What a service remembers for lookup by id, bounded per owner (SPEC V1).

Finished sessions and jobs stay found by id until retention removes them, and retention counts
per owner (a front door's tenant), so one tenant's load never evicts another tenant's records.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, final

__all__ = ["Retained"]

_T = TypeVar("_T")


@final
class Retained(Generic[_T]):
    """Records by id, at most `limit` per owner; past it the owner's oldest evictable ones go.

    `evictable` says which records may go (a job still queued or running may not): the oldest
    evictable records of the same owner are dropped first, and only as many as the owner is over.
    """

    __slots__ = ("_by_id", "_by_owner", "_evictable", "limit")

    def __init__(self, limit: int, *, evictable: Callable[[_T], bool] = lambda _: True) -> None:
        self.limit = limit
        self._evictable = evictable
        self._by_id: dict[str, _T] = {}
        self._by_owner: dict[str | None, OrderedDict[str, None]] = {}

    def add(self, key: str, value: _T, owner: str | None) -> None:
        self._by_id[key] = value
        keys = self._by_owner.get(owner)
        if keys is None:  # (not `setdefault`: it would make an OrderedDict per call)
            keys = self._by_owner[owner] = OrderedDict()
        keys[key] = None
        excess = len(keys) - self.limit
        if excess > 0:
            oldest = itertools.islice(keys, 4 * excess)  # a bounded look: evictable ones are mostly oldest
            for old in [k for k in oldest if self._evictable(self._by_id[k])][:excess]:
                del keys[old], self._by_id[old]

    def get(self, key: str) -> _T | None:
        return self._by_id.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[_T]:
        return iter(self._by_id.values())
