"""The results table (terminal and Markdown) and the machine it was measured on."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ._common import Result, fmt

__all__ = ["environment", "render_markdown", "render_table"]

_HEADER = ("benchmark", "measure", "qmux", "baseline", "ratio", "target", "met")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def _git_revision() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head} (with uncommitted changes)" if dirty else head


def environment() -> dict[str, str]:
    """What the figures were measured on."""
    import structlog
    import trio

    import qmux

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 0
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": f"{usable} usable ({os.cpu_count()} online), {_cpu_model()}",
        "memory": _memory(),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "trio": trio.__version__,
        "structlog": structlog.__version__,
        "qmux": f"{qmux.__version__}, git {_git_revision()}",
    }


def _rows(results: Sequence[Result]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for result in results:
        if result.error:
            rows.append((result.name, "FAILED (see below)", "—", "—", "—", "", "no"))
            continue
        if result.skipped:
            rows.append((result.name, result.skipped, "—", "—", "—", "", "skipped"))
            continue
        for row in result.rows:
            met = "" if row.met is None else ("yes" if row.met else "NO")
            rows.append(
                (
                    result.name,
                    row.measure,
                    fmt(row.qmux, row.unit),
                    fmt(row.baseline, row.unit),
                    fmt(row.ratio, "x") if row.ratio is not None else "",
                    row.target,
                    met,
                )
            )
    return rows


def render_table(results: Sequence[Result]) -> str:
    """A Markdown table that also reads well in a terminal (columns padded)."""
    rows = [_HEADER, *_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(rows[0]), separator, *(line(row) for row in rows[1:])])


def render_markdown(results: Sequence[Result], env: dict[str, str], total: float, *, quick: bool) -> str:
    """bench/RESULTS.md: the table, the machine, then how each benchmark measured and what it found."""
    parts = [
        "# qmux benchmarks: results",
        "",
        "Written by `make bench` (`python -m bench`); do not edit by hand, run it again. Every figure "
        "below comes from that one run: qmux and its baseline were measured side by side in the same "
        "process, alternating round by round, so read the **ratios**; absolute times on a shared "
        "machine move from run to run.",
        "",
    ]
    if quick:
        parts += ["**This was a `--quick` smoke run with small sizes: not the figures of record.**", ""]
    parts += [f"- **{key}**: {value}" for key, value in env.items()]
    parts += [f"- **total run time**: {total:.0f} s", "", "## Summary", "", render_table(results), ""]
    for result in results:
        parts += [f"## {result.name}", ""]
        if result.error:
            parts += ["It failed:", "", "```", result.error.rstrip(), "```", ""]
            continue
        if result.skipped:
            parts += [f"Skipped: {result.skipped}", ""]
        if result.method:
            parts += [result.method.strip(), ""]
        notes = result.extra.get("notes")
        if notes:
            parts += [str(notes).strip(), ""]
        parts += [f"_{result.seconds:.1f} s of the run._", ""]
    return "\n".join(parts).rstrip() + "\n"
