"""What every benchmark shares: logging set-up, timing, memory readings, results and their rows.

A benchmark module exposes ``run(quick: bool) -> Result``. It measures qmux and its baseline in
the same process, alternating them round by round (`alternate`), and reports medians and their
ratio, because on a shared, noisy machine a ratio measured side by side means more than any
absolute time.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog

__all__ = [
    "Result",
    "Row",
    "alternate",
    "configure_logging",
    "fmt",
    "percentile",
    "rss_bytes",
]


def configure_logging(level: int = logging.WARNING, processors: Sequence[Any] | None = None) -> None:
    """Configure structlog as an application would: drop qmux's debug and info events.

    ``cache_logger_on_first_use`` is structlog's documented production setting; without it every
    ``bind()`` (one per session, one per job) rebuilds the logger from the configuration.
    """
    kwargs: dict[str, Any] = {
        "wrapper_class": structlog.make_filtering_bound_logger(level),
        "cache_logger_on_first_use": True,
    }
    if processors is not None:
        kwargs["processors"] = list(processors)
    structlog.reset_defaults()
    structlog.configure(**kwargs)


@dataclass
class Row:
    """One line of the results table: a measure of qmux beside its baseline."""

    measure: str
    qmux: float | None
    unit: str
    baseline: float | None = None
    #: qmux relative to the baseline, oriented so that the target reads naturally
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Result:
    """What one benchmark found, and how it measured it (for bench/RESULTS.md)."""

    name: str
    rows: list[Row] = field(default_factory=list)
    method: str = ""
    skipped: str | None = None
    error: str | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        rows = [Row(**row) for row in data.pop("rows", [])]
        return cls(rows=rows, **data)


def alternate(
    rounds: int, contenders: dict[str, Callable[[], float]], *, warmup: bool = True
) -> dict[str, list[float]]:
    """Run each contender once per round, alternating who goes first; return every sample.

    A first, discarded round warms imports and caches. Garbage is collected before each
    sample so that one contender does not pay for the other's garbage.
    """
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    if warmup:
        for name in names:
            gc.collect()
            contenders[name]()
    for index in range(rounds):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            gc.collect()
            samples[name].append(contenders[name]())
    return samples


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def rss_bytes() -> int:
    """The process's resident set size now (Linux ``/proc``; 0 where that is missing)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Stopwatch:
    """``with Stopwatch() as watch: ...`` then ``watch.seconds``."""

    seconds: float = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def fmt(value: float | None, unit: str) -> str:
    """A figure for the table, in its unit, with sensible digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit == "x":
        return f"{value:.2f}x"
    if unit in ("B", "bytes"):
        return f"{value / 1024:.1f} KB" if value >= 1024 else f"{value:.0f} B"
    if unit == "ms":
        return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "objects":
        return f"{value:,.0f}" if value >= 1000 else f"{value:.1f}"
    if unit == "µs":
        return f"{value:.1f} µs"
    return f"{value:g} {unit}".strip()
