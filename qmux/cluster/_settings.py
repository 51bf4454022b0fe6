"""The ``[cluster]`` table: this node's name, where it answers, and how long its leases last."""

from __future__ import annotations

import re
from typing import Final

from attrs import field, frozen

from .._core import InvalidInputError, identifier, matches, positive_seconds

__all__ = ["ClusterSettings"]

_HTTP_URL: Final = re.compile(r"https?://[^/\s?#]+")
#: the shortest lease: a node renews at a third of it, and one database round trip must fit
MIN_LEASE: Final = 1.0


@frozen
class ClusterSettings:
    """One node of several sharing a PostgreSQL journal (the ``[cluster]`` table of ``qmux serve``)."""

    #: this node's name, unique among the nodes (its leases carry it; letters, digits, '-', '_')
    node: str = field(validator=identifier)
    #: the base URL other nodes reach this node at ("http://10.0.0.5:8765"): forwarded requests go there
    advertise_url: str = field(validator=matches(_HTTP_URL, 'an http(s) base URL such as "http://10.0.0.5:8765"'))
    #: how long this node owns a backend without renewing (renewed every third of it): a dead
    #: node's backends move after about this long
    lease: float = field(default=5.0, validator=positive_seconds)
    #: backends this node takes as soon as they are free; the others only once they have been
    #: free for a moment (a third of the lease), so that each backend finds its preferred node
    prefer: tuple[str, ...] = ()

    def __attrs_post_init__(self) -> None:
        if self.lease < MIN_LEASE:
            raise InvalidInputError(
                f"lease={self.lease!r} is too short: a node renews at a third of it; use {MIN_LEASE} s or more"
            )

    @property
    def renew_every(self) -> float:
        return self.lease / 3
