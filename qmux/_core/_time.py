"""Timestamps that follow Trio's clock, so that a virtual clock moves them too."""

from __future__ import annotations

import datetime as dt

import trio
from attrs import frozen

__all__ = ["WallClock", "wall_now"]


def wall_now() -> dt.datetime:
    """The current UTC time (a seam: tests that restart a service on a virtual clock replace it)."""
    return dt.datetime.now(dt.UTC)


@frozen
class WallClock:
    """Maps Trio's monotonic time onto UTC wall time from one fixed reading.

    Every timestamp qmux reports comes from here, so that under `trio.testing.MockClock` the
    reported times advance exactly as the virtual clock does and tests can assert on them.
    """

    wall_epoch: dt.datetime
    trio_epoch: float

    @classmethod
    def start(cls) -> WallClock:
        return cls(wall_now(), trio.current_time())

    def at(self, trio_time: float) -> dt.datetime:
        return self.wall_epoch + dt.timedelta(seconds=trio_time - self.trio_epoch)

    def trio_at(self, posix_seconds: float) -> float:
        """The Trio time of a wall-clock instant (POSIX seconds), e.g. one read from a journal."""
        return self.trio_epoch + (posix_seconds - self.wall_epoch.timestamp())

    def iso(self, trio_time: float | None) -> str | None:
        """UTC ISO-8601 with a trailing ``Z``, as IBM's API writes it; ``None`` stays ``None``."""
        if trio_time is None:
            return None
        return self.at(trio_time).isoformat(timespec="microseconds").replace("+00:00", "Z")
