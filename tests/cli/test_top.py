"""``qmux top``'s picture (`TopView`), driven by events of SPEC E1's shape, and the time filters of the listings.

`TopView` is plain: it takes ``details()`` and events and says what to draw, so it is tested here
without a terminal or a server; the live command runs against a server in the skip-gated tests
of ``test_commands.py`` once the client has ``service.events()``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
from typing import Any

import attrs
import pytest
from rich.console import Console

from qmux._cli._commands import _when
from qmux._cli._top import RECENT, TopView

AT = dt.datetime(2026, 11, 24, 13, 0, tzinfo=dt.UTC)


@attrs.frozen
class Event:
    """An event as SPEC E1 describes ``qmux.Event``: kind, at, session_id, job_id, data."""

    kind: str
    session_id: str | None = None
    job_id: str | None = None
    data: dict[str, Any] = attrs.field(factory=dict)
    at: dt.datetime = AT


def details(session_id: str, backend: str = "q", state: str = "open") -> dict[str, Any]:
    return {"id": session_id, "backend_name": backend, "state": state, "mode": "dedicated"}


def drawn(view: TopView) -> str:
    console = Console(file=io.StringIO(), width=120)
    console.print(view.render())
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text


def test_top_follows_holders_and_each_sessions_queue() -> None:
    view = TopView(pending={"q": 0, "r": 0})
    view.learn_session(details("s1"))
    view.learn_session(details("s2"))
    view.apply(Event("session.active", "s1"))
    for job_id in ("j1", "j2", "j3"):
        view.apply(Event("job.queued", "s1", job_id))
    view.apply(Event("job.running", "s1", "j1"))
    view.apply(Event("job.queued", "s2", "k1"))
    assert view.holders == {"q": "s1"}
    assert (view.sessions["s1"].queued, view.sessions["s1"].running) == (2, 1)
    view.apply(Event("job.done", "s1", "j1"))
    view.apply(Event("job.cancelled", "s1", "j2"))  # cancelled while queued
    assert (view.sessions["s1"].queued, view.sessions["s1"].running) == (1, 0)
    view.apply(Event("session.inactive", "s1", data={"reason": "ittl"}))
    view.apply(Event("session.active", "s2"))
    assert view.holders == {"q": "s2"} and view.sessions["s1"].state == "inactive"
    view.apply(Event("session.closed", "s1", data={"reason": "cancelled"}))
    assert "s1" not in view.sessions and view.holders == {"q": "s2"}
    text = drawn(view)
    assert "s2" in text and "session.closed" in text and "reason=cancelled" in text


def test_top_asks_for_a_session_it_has_not_seen_and_counts_what_it_missed() -> None:
    view = TopView(pending={"q": 1})
    assert view.apply(Event("job.queued", "new", "j")) == "new"
    view.learn_session(details("new", state="active"))
    assert view.apply(Event("job.running", "new", "j2")) is None
    assert view.apply(Event("session.closed", "gone")) is None  # nothing to read of a closed one
    view.apply(Event("lagged", data={"missed": 7}))
    assert view.missed == 7 and "7 events missed" in drawn(view)
    for n in range(RECENT + 5):
        view.apply(Event("session.ittl_warning", "new", data={"seconds_left": n}))
    assert len(view.recent) == RECENT and view.recent[-1].endswith(f"seconds_left={RECENT + 4}")


def test_a_closed_session_read_at_start_is_not_shown() -> None:
    view = TopView()
    view.learn_session(details("s", state="closed"))
    view.learn_job("j", "s", "QUEUED")
    assert view.sessions == {} and view.jobs == {"j": ("s", "queued")}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-24T13:00:00Z", AT),
        ("2026-11-24T13:00:00", AT),  # no zone: UTC
        ("2026-11-24T14:00:00+01:00", AT),
    ],
)
def test_since_and_until_take_iso_times(text: str, expected: dt.datetime) -> None:
    assert _when(text) == expected


def test_since_and_until_take_a_duration_ago_and_refuse_the_rest() -> None:
    moment = _when("10m")
    ago = dt.datetime.now(dt.UTC) - moment
    assert dt.timedelta(minutes=10) <= ago < dt.timedelta(minutes=10, seconds=5)
    with pytest.raises(argparse.ArgumentTypeError, match=r"neither a time .* nor a duration ago"):
        _when("yesterday")
