"""Shared fixtures: services to run the suite against, and scripted backends.

Time-dependent tests take pytest-trio's ``autojump_clock`` (``MockClock(autojump_threshold=0)``).

`service_factory` is parametrised over the ways to reach a service. Tests written against it
use only the public API, so the same rules are checked in process and over HTTP (where the
HTTP front door adds its parameter), and the two cannot drift.
"""

from __future__ import annotations

import pytest

from .support.services import SERVICE_KINDS, ServiceFactory


@pytest.fixture(params=sorted(SERVICE_KINDS))
def service_factory(request: pytest.FixtureRequest) -> ServiceFactory:
    """``async with service_factory(backends, settings) as service``: local, and remote where available."""
    return SERVICE_KINDS[request.param]
