"""Health: what ``GET /livez`` and ``GET /readyz`` answer (Kubernetes' probes, load balancers).

*Live*: the process answers; restarting it would not help otherwise. *Ready*: it can take work
now, which these checks decide, each cheap enough to run on every probe:

- ``journal``: the journal took its latest write. While the service writes, its own batches
  answer; when it has written nothing since the last look, an empty probe batch goes through the
  store (`WatchedJournal.probe`), at most once every `PROBE_EVERY` seconds whoever asks, and a
  probe that takes longer than `PROBE_TIMEOUT` counts as failed. No journal: nothing to check.
- ``backends``: the service has entered its backends (it exists only once they are) and at
  least one of them is operational: a server none of whose backends can run a job is not ready.
- ``accepting``: the server is not shutting down (from then on it refuses new work).

Both answer 200 when every check passes and 503 when one fails; ``?verbose`` lists each check
with what it found. Both are public and exempt from the in-flight limit (`Route.bounded`): a
probe must be answered when the server is busiest.
"""

from __future__ import annotations

import math
from typing import Final, Literal, final

import msgspec
import trio
from attrs import define, field

from .._http import ServiceView
from ._journal import WatchedJournal

__all__ = ["PROBE_EVERY", "PROBE_TIMEOUT", "Check", "Health", "HealthQuery", "HealthReport"]

#: a quiet journal is probed at most this often, in seconds, however many ask
PROBE_EVERY: Final = 1.0
#: a probe write that takes longer than this, in seconds, fails the check
PROBE_TIMEOUT: Final = 2.0


class HealthQuery(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``?verbose`` (bare, as Kubernetes writes it, or ``=1``/``=true``): list each check."""

    verbose: Literal["", "1", "true", "0", "false"] | None = msgspec.field(default=None)

    @property
    def wanted(self) -> bool:
        return self.verbose in ("", "1", "true")


class Check(msgspec.Struct, kw_only=True):
    """One check: its name, whether it passed, and what it found."""

    name: str
    ok: bool
    detail: str


class HealthReport(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``{"status": "ok"}`` or ``{"status": "failed"}``; with ``?verbose``, each check too."""

    status: Literal["ok", "failed"]
    checks: list[Check] | None = None

    @classmethod
    def of(cls, checks: list[Check], *, verbose: bool) -> HealthReport:
        return cls(status="ok" if all(check.ok for check in checks) else "failed", checks=checks if verbose else None)


@final
@define(eq=False)
class Health:
    """The checks of one server: over its view of the service, and its journal if it has one."""

    view: ServiceView
    journal: WatchedJournal | None = None
    #: the real writes the journal had made at the last look (a probe runs only when none came since)
    _writes_seen: int = field(default=0, init=False)
    #: the latest probe's finding, and when it ran (Trio time)
    _probe_error: str | None = field(default=None, init=False)
    _probed_at: float = field(default=-math.inf, init=False)
    #: set while a probe runs, so that concurrent checks share it
    _probing: trio.Event | None = field(default=None, init=False)

    def live(self) -> list[Check]:
        """Live: this answer is the check (the event loop runs and serves requests)."""
        return [Check(name="ping", ok=True, detail="the server answers")]

    async def ready(self) -> list[Check]:
        """Ready: the journal writes, a backend can run jobs, the server is not shutting down."""
        return [await self._journal(), self._backends(), self._accepting()]

    async def _journal(self) -> Check:
        journal = self.journal
        if journal is None:
            return Check(name="journal", ok=True, detail="no journal: sessions and jobs are kept in memory only")
        if journal.writes != self._writes_seen:  # the service wrote since the last look: that answers
            self._writes_seen = journal.writes
            error, how = journal.last_error, "the latest write"
        else:
            error, how = await self._probe(journal), "a probe write"
        if error is not None:
            return Check(name="journal", ok=False, detail=f"{how} failed: {error}")
        return Check(name="journal", ok=True, detail=f"{how} succeeded")

    async def _probe(self, journal: WatchedJournal) -> str | None:
        if self._probing is not None:
            await self._probing.wait()
            return self._probe_error
        if trio.current_time() - self._probed_at < PROBE_EVERY:
            return self._probe_error
        self._probing = probing = trio.Event()
        try:
            with trio.move_on_after(PROBE_TIMEOUT) as waited:
                if journal.blocking:
                    self._probe_error = await trio.to_thread.run_sync(journal.probe, abandon_on_cancel=True)
                else:
                    self._probe_error = journal.probe()
            if waited.cancelled_caught:
                self._probe_error = f"it did not finish within {PROBE_TIMEOUT:g} s"
        finally:
            self._probed_at = trio.current_time()
            self._probing = None
            probing.set()
        return self._probe_error

    def _backends(self) -> Check:
        handles = self.view.service.backends()
        operational = sum(1 for handle in handles if handle.operational)
        detail = f"{operational} of {len(handles)} backends operational"
        return Check(name="backends", ok=operational > 0, detail=detail)

    def _accepting(self) -> Check:
        if self.view.stopping:
            return Check(name="accepting", ok=False, detail="the server is shutting down: it takes no new work")
        return Check(name="accepting", ok=True, detail="the server takes new sessions and jobs")
