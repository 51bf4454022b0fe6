"""Prometheus metrics for ``GET /metrics``: what runs, what waits, how jobs and requests went.

Written with prometheus-client into a registry of the app's own (never the global one: several
apps share a test process, and each server counts only its own work). Each source is read the
cheapest way it can be, so that a server with metrics on answers about as fast as one without:

- **Counts as things happen** (HTTP requests, jobs started and ended) are tallied inline in plain
  dicts and lists (`Tally`: a dict increment, and a bisect for a duration; no lock, for the
  pipeline and the core run on one thread) and made into counter and histogram families only when
  Prometheus scrapes. Requests come from the pipeline (`HttpApp.observe`); the ``route`` label
  is the operation id (``submit_job``, ``ibm_get_job``; ``no_route`` for a path that is none),
  never a raw path, so ids never become series. Jobs come from the core as each starts and ends
  (`Service.observe_jobs`): every job the service runs, however it came, with nothing looked up.
- **Gauges** of state (``qmux_queued_jobs``, ``qmux_sessions``) are gathered when Prometheus
  scrapes, by a collector that reads the service then, rather than updated on every change.
- **Sessions** the server opens are followed by id from the moment a front door takes them
  (`ServiceView` tells its observers) or a restart recovers them from the journal; each scrape
  looks each open one up (``service.session(id)``, with a checkpoint every
  `LOOKUPS_PER_CHECKPOINT`, so that a long pass shares the event loop), tallies them by state,
  counts the deactivations and closings it finds, and forgets those that closed. What is followed
  is bounded (`Metrics.limit`): past it the oldest is dropped.
- **Jobs a restart recovered** that ended during the recovery itself (interrupted while
  running: SPEC J4) ended before any observer could hear of it: the first scrape looks them up
  and counts them.

No label carries an id. Tenants label the job, session and request series only when the
``[server] metrics_tenant_label`` key asks for it (a series per tenant: for a few tenants).
"""

from __future__ import annotations

import bisect
import collections
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Final, final

import attrs
import structlog
import trio
from attrs import define, field, frozen
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from .._core import JobChange, JobNotFoundError, JobStatus, QmuxError, Service, SessionNotFoundError
from .._http import Answered, Taken

__all__ = ["CONTENT_TYPE", "HTTP_BUCKETS", "JOB_BUCKETS", "Counts", "Durations", "Families", "Metrics", "Tally"]

_log = structlog.get_logger("qmux.server")

#: the text exposition format every Prometheus reads
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
#: seconds a job waits or runs: QPU jobs take from milliseconds to hours
JOB_BUCKETS: Final = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0)
#: seconds a request takes, up to a long poll's 30 s and beyond
HTTP_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: the states a session that has not closed is in (SPEC S18)
OPEN_STATES: Final = ("open", "active", "inactive")
#: the ``route`` label of a request whose path is no route
NO_ROUTE: Final = "no_route"
#: lookups a scrape makes between two checkpoints: a long pass never holds the event loop for long
LOOKUPS_PER_CHECKPOINT: Final = 256

#: a series' label values, as counted (`str` of each when scraped: a status code stays an int until then)
Labels = tuple[object, ...]
#: the ``status`` label of each job status
_STATUS_LABEL: Final = {status: status.value.lower() for status in JobStatus}


@final
class Counts:
    """A counter family kept as plain numbers (label values -> count), made into a family when scraped."""

    __slots__ = ("_documentation", "_labels", "_name", "values")

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        #: the name without ``_total`` (prometheus-client adds it), as `prometheus_client.Counter` takes it
        self._name, self._documentation, self._labels = name, documentation, list(labels)
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels, amount: float = 1) -> None:
        self.values[labels] = self.values.get(labels, 0) + amount

    def family(self) -> CounterMetricFamily:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labels)
        for labels, count in self.values.items():
            family.add_metric([str(label) for label in labels], count)
        return family


@final
class Durations:
    """A histogram family kept as plain numbers: per label values, a count per bucket and the sum."""

    __slots__ = ("_bounds", "_buckets", "_documentation", "_labels", "_name", "values")

    def __init__(self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]) -> None:
        self._name, self._documentation, self._labels = name, documentation, list(labels)
        self._buckets = tuple(buckets)
        self._bounds = [*map(floatToGoString, self._buckets), "+Inf"]
        #: label values -> [count per bucket (the last: above every bound)..., sum of seconds]
        self.values: dict[Labels, list[float]] = {}

    def observe(self, labels: Labels, seconds: float) -> None:
        values = self.values.get(labels)
        if values is None:
            values = self.values[labels] = [0.0] * (len(self._buckets) + 2)
        values[bisect.bisect_left(self._buckets, seconds)] += 1
        values[-1] += seconds

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self._name, self._documentation, labels=self._labels)
        for labels, values in self.values.items():
            cumulative = itertools.accumulate(values[:-1])
            family.add_metric(
                [str(label) for label in labels], list(zip(self._bounds, cumulative, strict=True)), sum_value=values[-1]
            )
        return family


@final
class Tally:
    """A prometheus-client collector over `Counts` and `Durations`: each family made when scraped."""

    def __init__(self, *tallies: Counts | Durations) -> None:
        self._tallies = tallies

    def collect(self) -> Iterator[Metric]:
        for tally in self._tallies:
            yield tally.family()


@final
@frozen
class Families:
    """The metrics the app counts as things happen (the gauges are `_StateCollector`'s)."""

    # (in the order a scrape lists them)
    jobs_ended: Counts
    job_seconds: Durations
    queue_seconds: Durations
    deactivations: Counts
    sessions_closed: Counts
    requests: Counts
    request_seconds: Durations

    @classmethod
    def registered(cls, registry: CollectorRegistry, *, tenant_label: bool) -> Families:
        """Each metric, registered in `registry`; `tenant_label` adds ``tenant`` to the counts of work."""
        tenant = ("tenant",) if tenant_label else ()
        families = cls(
            requests=Counts(
                "qmux_http_requests", "HTTP requests answered, by route and status", ("route", "status", *tenant)
            ),
            request_seconds=Durations(
                "qmux_http_request_duration_seconds",
                "How long HTTP requests took to answer, by route (long polls included)",
                ("route",),
                HTTP_BUCKETS,
            ),
            jobs_ended=Counts("qmux_jobs", "Jobs that ended, by final status", ("backend", "status", *tenant)),
            job_seconds=Durations(
                "qmux_job_duration_seconds",
                "How long jobs ran on their backend (jobs that started), counted when they end",
                ("backend",),
                JOB_BUCKETS,
            ),
            queue_seconds=Durations(
                "qmux_job_queue_seconds",
                "How long jobs waited from submission until they started",
                ("backend",),
                JOB_BUCKETS,
            ),
            deactivations=Counts(
                "qmux_session_deactivations",
                "Sessions deactivated after an interactive TTL with nothing to run (SPEC S9)",
                ("backend", *tenant),
            ),
            sessions_closed=Counts(
                "qmux_sessions_closed", "Sessions that closed, by closed_reason", ("backend", "reason", *tenant)
            ),
        )
        registry.register(Tally(*attrs.astuple(families, recurse=False)))  # every one of them
        return families


@define(eq=False)
class _FollowedSession:
    backend: str
    tenant: str
    #: the state it was last seen in
    state: str = "open"
    #: how many steps of its history (``details()["timestamps"]``) were counted already
    steps_seen: int = 0


@final
@define(eq=False)
class Metrics:
    """One server's metrics: its registry, the counts the pipeline and the core feed, the sessions it follows.

    Make one with `Metrics.of`.
    """

    service: Service
    registry: CollectorRegistry
    families: Families
    tenant_label: bool
    #: the most sessions followed at once
    limit: int
    #: sessions by (backend, state[, tenant]), as the last scrape found them
    session_counts: collections.Counter[tuple[str, ...]] = field(factory=collections.Counter, init=False)
    _sessions: dict[str, _FollowedSession] = field(factory=dict, init=False)
    #: jobs a restart recovered unfinished, not yet seen to end: the first scrape counts those
    #: that ended in the recovery itself (the others are told as they end, and leave this)
    _recovered: dict[str, Taken] = field(factory=dict, init=False)
    _refreshing: trio.Lock = field(factory=trio.Lock, init=False)

    @classmethod
    def of(cls, service: Service, *, tenant_label: bool = False, limit: int = 200_000) -> Metrics:
        """The metrics of `service`, in a registry of their own (with the process's: CPU, memory, files)."""
        registry = CollectorRegistry(auto_describe=True)
        metrics = cls(service, registry, Families.registered(registry, tenant_label=tenant_label), tenant_label, limit)
        ProcessCollector(registry=registry)
        registry.register(_StateCollector(metrics))
        service.observe_jobs(metrics.job_changed)
        return metrics

    # -- fed as things happen (inline, cheap) ------------------------------------------------

    def answered(self, request: Answered) -> None:
        """Count one answered request (an `HttpApp` observer)."""
        route, status, families = request.route or NO_ROUTE, request.status, self.families
        families.requests.inc((route, status, request.tenant or "") if self.tenant_label else (route, status))
        families.request_seconds.observe((route,), request.seconds)

    def job_changed(self, change: JobChange) -> None:
        """Count a job that started (its time in the queue) or ended (its status, its time running)."""
        if change.status is JobStatus.RUNNING:
            self.families.queue_seconds.observe((change.backend,), change.queue_seconds)
            return
        self._count_end(change.backend, change.status, change.owner or "", change.run_seconds)
        if self._recovered:
            self._recovered.pop(change.job_id, None)

    def _count_end(self, backend: str, status: JobStatus, tenant: str, run_seconds: float | None) -> None:
        """Count a job that ended: by status, and its time running if it started."""
        label = _STATUS_LABEL[status]
        self.families.jobs_ended.inc((backend, label, tenant) if self.tenant_label else (backend, label))
        if run_seconds is not None:
            self.families.job_seconds.observe((backend,), run_seconds)

    def took(self, taken: Taken) -> None:
        """Follow a session a front door opened (a `ServiceView` observer), or one recovered."""
        self._sessions[taken.id] = _FollowedSession(taken.backend, taken.tenant)
        if len(self._sessions) > self.limit:
            del self._sessions[next(iter(self._sessions))]  # the oldest: the likeliest to have closed unseen

    def follow(self, recovered: Iterable[Taken]) -> None:
        """Follow what a restart recovered (`WatchedJournal.recovered`): its open sessions, and its
        unfinished jobs until each is seen to end (the core tells of those that end from now on)."""
        for taken in recovered:
            if taken.kind == "job":
                self._recovered[taken.id] = taken
            else:
                self.took(taken)

    # -- gathered when Prometheus scrapes -----------------------------------------------------

    async def exposition(self) -> bytes:
        """The text Prometheus reads: the followed sessions looked up first, then every metric."""
        await self.refresh()
        return generate_latest(self.registry)

    async def refresh(self) -> None:
        """Count the recovered jobs that ended unheard; look up each followed session."""
        async with self._refreshing:  # two scrapes at once: the second waits, then sees the latest
            if self._recovered:
                await self._count_recovered()
            await self._refresh_sessions()

    async def _count_recovered(self) -> None:
        for job_id, taken in list(self._recovered.items()):
            try:
                job = await self.service.job(job_id)
            except JobNotFoundError:  # forgotten (retention) already
                self._recovered.pop(job_id, None)
                continue
            status = JobStatus(await job.status())
            if not status.is_final:
                continue  # still to run: the core tells `job_changed` when it ends
            if self._recovered.pop(job_id, None) is None:
                continue
            metrics = await job.metrics()
            started = metrics["timestamps"]["running"] is not None
            self._count_end(taken.backend, status, taken.tenant, metrics["usage"]["seconds"] if started else None)

    async def _refresh_sessions(self) -> None:
        counts: collections.Counter[tuple[str, ...]] = collections.Counter()
        for count, (session_id, followed) in enumerate(list(self._sessions.items()), 1):
            if count % LOOKUPS_PER_CHECKPOINT == 0:
                await trio.lowlevel.checkpoint()
            key = (followed.backend, *self._tenant(followed.tenant))
            try:
                details = await (await self.service.session(session_id)).details()
            except SessionNotFoundError:  # forgotten (retention) before a scrape saw it close
                self._sessions.pop(session_id, None)
                continue
            except QmuxError as exc:  # its mailbox is full, say: it keeps the state last seen
                _log.debug("metrics.session_unread", session_id=session_id, error=str(exc))
                counts[(followed.backend, followed.state, *key[1:])] += 1
                continue
            history = details["timestamps"]
            deactivated = sum(1 for step in history[followed.steps_seen :] if step["status"] == "inactive")
            followed.steps_seen = len(history)
            if deactivated:
                self.families.deactivations.inc(key, deactivated)
            if details["state"] == "closed":
                if self._sessions.pop(session_id, None) is not None:
                    reason = details["closed_reason"] or "unknown"
                    self.families.sessions_closed.inc((followed.backend, reason, *key[1:]))
                continue
            followed.state = details["state"]
            counts[(followed.backend, followed.state, *key[1:])] += 1
        self.session_counts = counts

    def _tenant(self, tenant: str) -> tuple[str, ...]:
        return (tenant,) if self.tenant_label else ()

    @property
    def followed(self) -> int:
        """How many sessions are followed now."""
        return len(self._sessions)


@final
class _StateCollector:
    """The gauges, read from the service when Prometheus scrapes (prometheus-client's Collector)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        queued, sessions = families
        backends = [handle.name for handle in self._metrics.service.backends()]
        for handle in self._metrics.service.backends():
            queued.add_metric([handle.name], handle.pending_jobs)
        counts = self._metrics.session_counts
        if self._metrics.tenant_label:
            for labels, count in sorted(counts.items()):
                sessions.add_metric(list(labels), count)
        else:  # every backend and state, zeros too: a series that exists can be alerted on
            for backend in backends:
                for state in OPEN_STATES:
                    sessions.add_metric([backend, state], counts.get((backend, state), 0))
        yield from families

    def _families(self) -> list[GaugeMetricFamily]:
        tenant = ["tenant"] if self._metrics.tenant_label else []
        return [
            GaugeMetricFamily(
                "qmux_queued_jobs", "Jobs queued for each backend, in sessions and in job mode", labels=["backend"]
            ),
            GaugeMetricFamily(
                "qmux_sessions",
                "Sessions not yet closed, by state (open, active, inactive; SPEC S18), as of this scrape",
                labels=["backend", "state", *tenant],
            ),
        ]
