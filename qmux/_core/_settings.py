"""A service's limits and delays, with the validators that say what is allowed."""

from __future__ import annotations

import re

from attrs import field, frozen

from ._gc_policy import GC_POLICIES
from ._validate import matches, non_negative_seconds, positive_int, positive_seconds

__all__ = ["ServiceSettings"]


@frozen
class ServiceSettings:
    """Limits and delays of a service. Every queue is bounded: past a limit, a clear refusal."""

    #: a session that receives no job this long after opening closes itself (SPEC S19)
    idle_open_timeout: float = field(default=1800.0, validator=positive_seconds)
    #: on shutdown, how long sessions may drain before what is left is cancelled
    shutdown_grace: float = field(default=10.0, validator=non_negative_seconds)
    #: jobs one session may hold queued
    max_queued_jobs_per_session: int = field(default=10_000, validator=positive_int)
    #: requests waiting in one session's mailbox
    max_mailbox: int = field(default=10_000, validator=positive_int)
    #: job-mode jobs and waiting sessions in one backend's line
    max_waiting_per_backend: int = field(default=1_000_000, validator=positive_int)
    #: sessions open at once across the service
    max_open_sessions: int = field(default=1_000_000, validator=positive_int)
    #: finished jobs and sessions kept for lookup by id; the oldest go first
    retain_finished: int = field(default=100_000, validator=positive_int)
    #: how long before an ITTL deactivation a ``session.ittl_warning`` event goes out (SPEC E1); 0: none
    ittl_warning: float = field(default=5.0, validator=non_negative_seconds)
    #: how long before max_time runs out a ``session.max_time_warning`` event goes out (SPEC E1); 0: none
    max_time_warning: float = field(default=60.0, validator=non_negative_seconds)
    #: events a subscriber may fall behind by; past it the oldest go and it gets one ``lagged`` event
    event_buffer: int = field(default=1000, validator=positive_int)
    #: event subscriptions open at once per owner (a tenant over HTTP)
    max_subscribers_per_owner: int = field(default=100, validator=positive_int)
    #: "freeze": once started, take what start-up allocated out of the garbage collector's scans and
    #: set its thresholds, so that its pauses stay short and rare; "default": leave the collector alone
    gc: str = field(
        default="default", validator=matches(re.compile("|".join(GC_POLICIES)), " or ".join(map(repr, GC_POLICIES)))
    )
