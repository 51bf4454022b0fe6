"""Prometheus metrics for ``GET /metrics``: what runs, what waits, how jobs and requests went.

Written with prometheus-client into a registry of the app's own (never the global one: several
apps share a test process, and each server counts only its own work). Three sources, each read
the cheapest way it can be:

- **HTTP requests** are tallied as the pipeline answers them (`HttpApp.observe`), in plain
  dicts and lists (`RequestTally`: a dict increment and a bisect per request, no lock: the
  pipeline runs on one thread), and turned into a counter and a histogram family when
  Prometheus scrapes. The ``route`` label is the operation id (``submit_job``, ``ibm_get_job``;
  ``no_route`` for a path that is none), never a raw path, so ids never become series.
- **Gauges** of state (``qmux_queued_jobs``, ``qmux_sessions``) are gathered when Prometheus
  scrapes, by a collector that reads the service then, rather than updated on every change.
- **Jobs and sessions** the server takes on are followed by id from the moment a front door
  takes them (`ServiceView` tells its observers) or a restart recovers them from the journal;
  each scrape looks each one up through the service's public API (``service.job(id)``,
  ``service.session(id)``), counts those that ended since the last scrape into
  ``qmux_jobs_total`` and the histograms, and forgets them. A scrape so costs one lookup per
  unfinished job and open session (with a checkpoint every `LOOKUPS_PER_CHECKPOINT`, so that a
  long pass shares the event loop); what is followed is bounded (`Metrics.limit`): past it the
  oldest is dropped and counted in ``qmux_jobs_unaccounted_total``, as is a job the service
  forgot (retention) before a scrape saw it end. In ``qmux serve`` every job and session comes
  through a front door, so nothing else escapes the count.

No label carries an id. Tenants label the job, session and request series only when the
``[server] metrics_tenant_label`` key asks for it (a series per tenant: for a few tenants).
"""

from __future__ import annotations

import bisect
import collections
import itertools
from collections.abc import Iterable, Iterator
from typing import Final, final

import structlog
import trio
from attrs import define, field, frozen
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from .._core import JobNotFoundError, JobStatus, QmuxError, Service, SessionNotFoundError
from .._http import Answered, Taken

__all__ = ["CONTENT_TYPE", "HTTP_BUCKETS", "JOB_BUCKETS", "Families", "Metrics", "RequestTally"]

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


@define(eq=False)
class _FollowedJob:
    backend: str
    tenant: str
    #: its time in the queue is observed once, when it is first seen started
    queue_observed: bool = False


@define(eq=False)
class _FollowedSession:
    backend: str
    tenant: str
    #: the state it was last seen in
    state: str = "open"
    #: how many steps of its history (``details()["timestamps"]``) were counted already
    steps_seen: int = 0


@final
@frozen
class Families:
    """The metrics the app counts as things happen, in its registry (the gauges are `_StateCollector`'s)."""

    jobs_ended: Counter
    job_seconds: Histogram
    queue_seconds: Histogram
    unaccounted: Counter
    deactivations: Counter
    sessions_closed: Counter
    requests: RequestTally

    @classmethod
    def registered(cls, registry: CollectorRegistry, *, tenant_label: bool) -> Families:
        """Each metric, registered in `registry`; `tenant_label` adds ``tenant`` to the counts of work."""
        tenant = ("tenant",) if tenant_label else ()
        return cls(
            jobs_ended=Counter(
                "qmux_jobs", "Jobs that ended, by final status", ("backend", "status", *tenant), registry=registry
            ),
            job_seconds=Histogram(
                "qmux_job_duration_seconds",
                "How long jobs ran on their backend (jobs that started), counted when they end",
                ("backend",),
                buckets=JOB_BUCKETS,
                registry=registry,
            ),
            queue_seconds=Histogram(
                "qmux_job_queue_seconds",
                "How long jobs waited from submission until they started",
                ("backend",),
                buckets=JOB_BUCKETS,
                registry=registry,
            ),
            unaccounted=Counter(
                "qmux_jobs_unaccounted",
                "Jobs taken whose end metrics could not see: forgotten by the service, or past the followed limit",
                registry=registry,
            ),
            deactivations=Counter(
                "qmux_session_deactivations",
                "Sessions deactivated after an interactive TTL with nothing to run (SPEC S9)",
                ("backend", *tenant),
                registry=registry,
            ),
            sessions_closed=Counter(
                "qmux_sessions_closed",
                "Sessions that closed, by closed_reason",
                ("backend", "reason", *tenant),
                registry=registry,
            ),
            requests=RequestTally.registered(registry, tenant_label=tenant_label),
        )


@final
class RequestTally:
    """HTTP requests by route and status, and how long they took by route: a prometheus-client
    collector that keeps plain numbers as requests are answered and makes the families (a
    counter, a histogram on `HTTP_BUCKETS`) only when scraped. The pipeline answers on one
    thread, so the tally needs no lock; a scrape runs on that thread too."""

    __slots__ = ("_counts", "_durations", "_tenant_label")

    def __init__(self, *, tenant_label: bool) -> None:
        self._tenant_label = tenant_label
        #: (route, status[, tenant]) -> requests
        self._counts: dict[tuple[str, ...], int] = {}
        #: route -> [count per bucket (the last: above every bound)..., sum of seconds]
        self._durations: dict[str, list[float]] = {}

    @classmethod
    def registered(cls, registry: CollectorRegistry, *, tenant_label: bool) -> RequestTally:
        tally = cls(tenant_label=tenant_label)
        registry.register(tally)
        return tally

    def count(self, route: str | None, status: int, tenant: str | None, seconds: float) -> None:
        route = route or NO_ROUTE
        key = (route, str(status), tenant or "") if self._tenant_label else (route, str(status))
        self._counts[key] = self._counts.get(key, 0) + 1
        durations = self._durations.get(route)
        if durations is None:
            durations = self._durations[route] = [0.0] * (len(HTTP_BUCKETS) + 2)
        durations[bisect.bisect_left(HTTP_BUCKETS, seconds)] += 1
        durations[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        labels = ["route", "status", *(["tenant"] if self._tenant_label else [])]
        requests = CounterMetricFamily(
            "qmux_http_requests", "HTTP requests answered, by route and status", labels=labels
        )
        for key, count in self._counts.items():
            requests.add_metric(list(key), count)
        yield requests
        seconds = HistogramMetricFamily(
            "qmux_http_request_duration_seconds",
            "How long HTTP requests took to answer, by route (long polls included)",
            labels=["route"],
        )
        bounds = [*map(floatToGoString, HTTP_BUCKETS), "+Inf"]
        for route, durations in self._durations.items():
            cumulative = list(itertools.accumulate(durations[:-1]))
            seconds.add_metric([route], list(zip(bounds, cumulative, strict=True)), sum_value=durations[-1])
        yield seconds


@final
@define(eq=False)
class Metrics:
    """One server's metrics: its registry, the counters the pipeline feeds, the work it follows.

    Make one with `Metrics.of`.
    """

    service: Service
    registry: CollectorRegistry
    families: Families
    tenant_label: bool
    #: the most jobs (and, apart, sessions) followed at once
    limit: int
    #: sessions by (backend, state[, tenant]), as the last scrape found them
    session_counts: collections.Counter[tuple[str, ...]] = field(factory=collections.Counter, init=False)
    _jobs: dict[str, _FollowedJob] = field(factory=dict, init=False)
    _sessions: dict[str, _FollowedSession] = field(factory=dict, init=False)
    _refreshing: trio.Lock = field(factory=trio.Lock, init=False)

    @classmethod
    def of(cls, service: Service, *, tenant_label: bool = False, limit: int = 200_000) -> Metrics:
        """The metrics of `service`, in a registry of their own (with the process's: CPU, memory, files)."""
        registry = CollectorRegistry(auto_describe=True)
        metrics = cls(service, registry, Families.registered(registry, tenant_label=tenant_label), tenant_label, limit)
        ProcessCollector(registry=registry)
        registry.register(_StateCollector(metrics))
        return metrics

    # -- fed as things happen (inline, cheap) ------------------------------------------------

    def answered(self, request: Answered) -> None:
        """Count one answered request (an `HttpApp` observer)."""
        self.families.requests.count(request.route, request.status, request.tenant, request.seconds)

    def took(self, taken: Taken) -> None:
        """Follow a session or job a front door took on (a `ServiceView` observer), or one recovered."""
        if taken.kind == "job":
            self._jobs[taken.id] = _FollowedJob(taken.backend, taken.tenant)
            if len(self._jobs) > self.limit:
                del self._jobs[next(iter(self._jobs))]  # the oldest: the likeliest to have ended unseen
                self.families.unaccounted.inc()
        else:
            self._sessions[taken.id] = _FollowedSession(taken.backend, taken.tenant)
            if len(self._sessions) > self.limit:
                del self._sessions[next(iter(self._sessions))]

    def follow(self, work: Iterable[Taken]) -> None:
        for taken in work:
            self.took(taken)

    # -- gathered when Prometheus scrapes -----------------------------------------------------

    async def exposition(self) -> bytes:
        """The text Prometheus reads: the followed work looked up first, then every metric."""
        await self.refresh()
        return generate_latest(self.registry)

    async def refresh(self) -> None:
        """Look up each followed job and session: count what ended, tally the sessions by state."""
        async with self._refreshing:  # two scrapes at once: the second waits, then sees the latest
            await self._refresh_jobs()
            await self._refresh_sessions()

    async def _refresh_jobs(self) -> None:
        for count, (job_id, followed) in enumerate(list(self._jobs.items()), 1):
            if count % LOOKUPS_PER_CHECKPOINT == 0:
                await trio.lowlevel.checkpoint()
            try:
                job = await self.service.job(job_id)
            except JobNotFoundError:  # forgotten (retention) before a scrape saw it end
                if self._jobs.pop(job_id, None) is not None:
                    self.families.unaccounted.inc()
                continue
            status = JobStatus(await job.status())
            if status is JobStatus.QUEUED or (followed.queue_observed and not status.is_final):
                continue
            metrics = await job.metrics()
            started = metrics["timestamps"]["running"] is not None
            if started and not followed.queue_observed:
                self.families.queue_seconds.labels(followed.backend).observe(metrics["queue_seconds"])
                followed.queue_observed = True
            if status.is_final and self._jobs.pop(job_id, None) is not None:
                self.families.jobs_ended.labels(
                    followed.backend, status.value.lower(), *self._tenant(followed.tenant)
                ).inc()
                if started:
                    self.families.job_seconds.labels(followed.backend).observe(metrics["usage"]["seconds"])

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
                self.families.deactivations.labels(*key).inc(deactivated)
            if details["state"] == "closed":
                if self._sessions.pop(session_id, None) is not None:
                    reason = details["closed_reason"] or "unknown"
                    self.families.sessions_closed.labels(followed.backend, reason, *key[1:]).inc()
                continue
            followed.state = details["state"]
            counts[(followed.backend, followed.state, *key[1:])] += 1
        self.session_counts = counts

    def _tenant(self, tenant: str) -> tuple[str, ...]:
        return (tenant,) if self.tenant_label else ()

    @property
    def followed(self) -> tuple[int, int]:
        """How many jobs and sessions are followed now."""
        return len(self._jobs), len(self._sessions)


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
