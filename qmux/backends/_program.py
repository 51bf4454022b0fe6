"""What an ``executor`` job returns: a quantum program's outcome, item by item (no qiskit needed to hold it).

`qmux.backends._executor` makes it; ``qmux.ibm`` writes it in the result schema IBM's client
decodes. Its arrays are numpy arrays.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from attrs import frozen

__all__ = ["ProgramItem", "ProgramResult"]


@frozen
class ProgramItem:
    """One item's outcome: arrays by name (registers, and a samplex's outputs)."""

    results: Mapping[str, Any]
    #: the item's shape: one bound circuit ran per element
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@frozen
class ProgramResult:
    """A quantum program's outcome, ready for IBM's result schema (``qmux.ibm._codec``)."""

    items: tuple[ProgramItem, ...]
    #: the program's own data, returned as given
    passthrough_data: Any
    #: how the client post-processes the result ("sampler-v2", "estimator-v2", ...)
    semantic_role: str | None
    started: dt.datetime
    finished: dt.datetime
