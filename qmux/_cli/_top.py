"""``qmux top``: a live terminal view of the backends, who holds each, their queues, and open sessions.

It reads the state once (the open sessions, the queued and running jobs: SPEC V1's listing),
then follows ``service.events()`` (SPEC E1) and redraws on each event, at most a few times a
second; queue depths are read again every ``--refresh`` seconds. `TopView` is the picture,
updated by events and plain enough to test without a terminal; `run_top` drives it.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator
from typing import Any, Final, Protocol, cast

import trio
from attrs import define, field
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from .._core import Job, Session
from .._remote import RemoteService
from ._tables import event_line
from ._views import event_view

__all__ = ["TopView", "run_top"]

#: lines of recent events shown under the tables
RECENT: Final = 8
#: the most jobs read at start per status (queued, running): the view counts, it does not list them
START_JOBS: Final = 10_000
_OPEN_STATES: Final = ("open", "active", "inactive")
_ENDED: Final = frozenset({"done", "error", "cancelled"})


class _Listing(Protocol):
    def sessions(self, **filters: Any) -> AsyncIterator[Session]: ...
    def jobs(self, **filters: Any) -> AsyncIterator[Job]: ...
    def events(self, **where: Any) -> AsyncIterator[Any]: ...


@define(eq=False)
class SessionLine:
    session_id: str
    backend: str
    state: str
    mode: str
    queued: int = 0
    running: int = 0


@define(eq=False)
class TopView:
    """What ``qmux top`` shows, kept up to date by `apply`."""

    #: backend -> its queue depth as last read
    pending: dict[str, int] = field(factory=dict)
    #: backend -> the session that holds it (active), if any
    holders: dict[str, str] = field(factory=dict)
    sessions: dict[str, SessionLine] = field(factory=dict)
    #: unfinished jobs: id -> (session id or None, "queued" or "running")
    jobs: dict[str, tuple[str | None, str]] = field(factory=dict)
    recent: collections.deque[str] = field(factory=lambda: collections.deque(maxlen=RECENT))
    #: events the stream dropped for this reader (``lagged``): the view is stale until re-read
    missed: int = 0

    def learn_session(self, details: dict[str, Any]) -> None:
        """A session's ``details()``: shown if it is not closed."""
        session_id = details["id"]
        if details["state"] == "closed":
            self._drop_session(session_id)
            return
        line = self.sessions.get(session_id)
        if line is None:
            line = self.sessions[session_id] = SessionLine(
                session_id, details["backend_name"], details["state"], details["mode"]
            )
        self._set_state(line, details["state"])

    def learn_job(self, job_id: str, session_id: str | None, status: str) -> None:
        """A job read at start: counted under its session while it is queued or running."""
        self._job(job_id, session_id, status.lower())

    def apply(self, event: Any) -> str | None:
        """Take in one event; the id of a session the view does not know yet (to read), else None."""
        view = event_view(event)
        self.recent.append(event_line(view))
        kind: str = view["kind"]
        session_id: str | None = view["session_id"]
        if kind == "lagged":
            self.missed += int(view["data"].get("missed", 0))
            return None
        subject, _, what = kind.partition(".")
        if subject == "job" and view["job_id"]:
            self._job(view["job_id"], session_id, what)
        elif subject == "session" and session_id is not None and what in (*_OPEN_STATES, "closed"):
            line = self.sessions.get(session_id)
            if what == "closed":
                self._drop_session(session_id)
            elif line is not None:
                self._set_state(line, what)
        if session_id is not None and session_id not in self.sessions and not kind.endswith(".closed"):
            return session_id
        return None

    def _job(self, job_id: str, session_id: str | None, status: str) -> None:
        before = self.jobs.pop(job_id, None)
        line = self.sessions.get(session_id) if session_id is not None else None
        if line is not None and before is not None:
            setattr(line, before[1], getattr(line, before[1]) - 1)
        if status in _ENDED:
            return
        self.jobs[job_id] = (session_id, status)
        if line is not None:
            setattr(line, status, getattr(line, status) + 1)

    def _set_state(self, line: SessionLine, state: str) -> None:
        line.state = state
        if state == "active":
            self.holders[line.backend] = line.session_id
        elif self.holders.get(line.backend) == line.session_id:
            del self.holders[line.backend]

    def _drop_session(self, session_id: str) -> None:
        line = self.sessions.pop(session_id, None)
        if line is not None and self.holders.get(line.backend) == session_id:
            del self.holders[line.backend]

    def render(self) -> Group:
        backends = Table(title="backends", title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("backend", "holder", "pending jobs", "open sessions"):
            backends.add_column(column, justify="right" if column in ("pending jobs", "open sessions") else "left")
        per_backend = collections.Counter(line.backend for line in self.sessions.values())
        for name in sorted(self.pending):
            backends.add_row(name, self.holders.get(name, "-"), str(self.pending[name]), str(per_backend[name]))
        sessions = Table(title="open sessions", title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("session", "backend", "state", "mode", "queued", "running"):
            sessions.add_column(column, justify="right" if column in ("queued", "running") else "left")
        order = {"active": 0, "inactive": 1, "open": 2}
        for line in sorted(self.sessions.values(), key=lambda each: (each.backend, order.get(each.state, 3))):
            sessions.add_row(line.session_id, line.backend, line.state, line.mode, str(line.queued), str(line.running))
        parts: list[Any] = [backends, sessions]
        if self.missed:
            parts.append(f"[yellow]{self.missed} events missed (a slow terminal); re-reading[/yellow]")
        parts += ["recent events:", *self.recent]
        return Group(*parts)


async def read_state(service: RemoteService, view: TopView) -> None:
    """The state as it is now: queue depths, the open sessions, the jobs queued or running."""
    listing = cast(_Listing, service)
    await service.refresh()
    view.pending = {handle.name: handle.pending_jobs for handle in service.backends()}
    for state in _OPEN_STATES:
        async for session in listing.sessions(state=state):
            view.learn_session(await session.details())
    for status in ("QUEUED", "RUNNING"):
        async for job in listing.jobs(status=status, limit=START_JOBS):
            view.learn_job(job.job_id, job.session_id, await job.status())
    view.missed = 0


async def run_top(service: RemoteService, console: Console, *, refresh: float = 2.0, frames: int | None = None) -> None:
    """Show the live view on `console` until interrupted (or, for tests, after `frames` redraws)."""
    view = TopView()
    await read_state(service, view)
    changed = trio.Event()
    drawn = 0
    with Live(view.render(), console=console, auto_refresh=False, transient=False) as live:

        async def follow() -> None:
            async for event in cast(_Listing, service).events():
                unknown = view.apply(event)
                if unknown is not None:
                    view.learn_session(await (await service.session(unknown)).details())
                if view.missed:
                    await read_state(service, view)
                changed.set()
            nursery.cancel_scope.cancel()  # the stream ended: the server is going away

        async def depths() -> None:
            while True:
                await trio.sleep(refresh)
                await service.refresh()
                view.pending = {handle.name: handle.pending_jobs for handle in service.backends()}
                changed.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            nursery.start_soon(depths)
            while frames is None or drawn < frames:
                await changed.wait()
                changed = trio.Event()
                live.update(view.render(), refresh=True)
                drawn += 1
                await trio.sleep(0.25)  # at most four redraws a second, however many events
            nursery.cancel_scope.cancel()
