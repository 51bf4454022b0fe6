"""The tables people read, drawn with rich from the views of ``_views`` (``--json`` prints those instead)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from .._core import format_duration

__all__ = ["backends_table", "detail_table", "event_line", "jobs_table", "sessions_table"]

#: a session's fields in the order people read them (``details()``'s names)
_SESSION_FIELDS = (
    "status",
    "backend_name",
    "mode",
    "state",
    "accepting_jobs",
    "closed_reason",
    "max_time",
    "interactive_timeout",
    "active_timeout",
    "usage_time",
    "started_at",
    "activated_at",
    "closed_at",
    "last_job_started",
    "last_job_completed",
    "failure_policy",
    "max_jobs",
)
_SECONDS = frozenset({"max_time", "interactive_timeout", "active_timeout", "usage_time"})
_NONE = "-"


def _table(*columns: str, right: Sequence[str] = (), title: str | None = None, header: bool = True) -> Table:
    """A plain table: a rule under the header, no frame; the first column (a name, an id) never wraps."""
    table = Table(
        box=box.SIMPLE_HEAD if header else box.SIMPLE,
        show_header=header,
        show_edge=False,
        pad_edge=False,
        title=title,
        title_justify="left",
    )
    for index, column in enumerate(columns):
        table.add_column(column, justify="right" if column in right else "left", no_wrap=index == 0)
    return table


def backends_table(views: Sequence[Mapping[str, Any]]) -> Table:
    table = _table(
        "backend", "qubits", "kind", "operational", "pending", "max_ttl", "ITTL", right=("qubits", "pending")
    )
    for view in views:
        configuration = view["configuration"]
        table.add_row(
            view["name"],
            str(view["num_qubits"]),
            "simulator" if view["simulator"] else "QPU",
            "yes" if view["operational"] else Text("no", style="bold red"),
            str(view["pending_jobs"]),
            format_duration(configuration["max_ttl"]),
            format_duration(configuration["interactive_ttl"]),
        )
    return table


def detail_table(view: Mapping[str, Any]) -> Table:
    """One session or job, a field per line."""
    table = _table("field", "value", title=f"{view['kind']} {view['id']}", header=False)
    for name, value in _session_rows(view) if view["kind"] == "session" else _job_rows(view):
        table.add_row(name, value)
    return table


def _session_rows(view: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    for name in _SESSION_FIELDS:
        value = view.get(name)
        yield name, _seconds(value) if name in _SECONDS else _text(value)
    steps = ", ".join(f"{step['status']} {_clock(step['timestamp'])}" for step in view.get("timestamps") or ())
    yield "history", steps or _NONE


def _job_rows(view: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    metrics = view["metrics"]
    times = metrics["timestamps"]
    yield "status", view["status"]
    if view["error"] is not None:
        error = view["error"]
        yield "error", f"{error['message']} ({error['reason'] or error['type']})"
    yield "backend", view["backend"]
    yield "session_id", _text(view["session_id"])
    yield "program_id", view["program_id"]
    yield "created", _text(times["created"])
    yield "running", _text(times["running"])
    yield "finished", _text(times["finished"])
    yield "queue_seconds", _seconds(metrics["queue_seconds"])
    yield "quantum_seconds", _seconds(metrics["usage"]["quantum_seconds"])
    yield "attempts", str(metrics["attempts"])


def sessions_table(views: Sequence[Mapping[str, Any]]) -> Table:
    table = _table("session", "backend", "mode", "state", "accepting", "started", "closed_reason", "usage")
    for view in views:
        table.add_row(
            view["id"],
            view["backend_name"],
            view["mode"],
            view["state"],
            "yes" if view["accepting_jobs"] else "no",
            _text(view["started_at"]),
            _text(view["closed_reason"]),
            _seconds(view["usage_time"]),
        )
    return table


def jobs_table(views: Sequence[Mapping[str, Any]]) -> Table:
    table = _table(
        "job", "backend", "session", "program", "status", "created", "queued", "ran", right=("queued", "ran")
    )
    for view in views:
        metrics = view["metrics"]
        table.add_row(
            view["id"],
            view["backend"],
            _text(view["session_id"]),
            view["program_id"],
            view["status"],
            _text(metrics["timestamps"]["created"]),
            _seconds(metrics["queue_seconds"]),
            _seconds(metrics["usage"]["quantum_seconds"]),
        )
    return table


def event_line(view: Mapping[str, Any]) -> str:
    """One event on one line: when, what, which session and job, and its data as ``key=value``."""
    parts = [view["at"], view["kind"]]
    if view["session_id"]:
        parts.append(f"session={view['session_id']}")
    if view["job_id"]:
        parts.append(f"job={view['job_id']}")
    parts += [f"{key}={value}" for key, value in view["data"].items()]
    return "  ".join(parts)


def _text(value: object) -> str:
    if value is None:
        return _NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _seconds(value: object) -> str:
    if value is None:
        return _NONE
    assert isinstance(value, (int, float))
    if value >= 60:
        return format_duration(round(value))
    return f"{float(value):.3g}s" if value >= 1 or value == 0 else f"{value * 1000:.3g}ms"


def _clock(timestamp: str | None) -> str:
    """The time of day of an ISO timestamp (its date is the session's ``started_at``)."""
    if timestamp is None:
        return _NONE
    return timestamp.split("T", 1)[-1].rstrip("Z")[:12]
