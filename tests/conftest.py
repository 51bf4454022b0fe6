"""Shared fixtures. qmux's own suite is the first user of the ``qmux`` pytest plugin (qmux.testing).

Time-dependent tests take pytest-trio's ``autojump_clock`` (``MockClock(autojump_threshold=0)``).

`service_factory` is the plugin's ``qmux_service_factory``, parametrised over the ways to reach a
service: in process and over HTTP. Tests written against it use only the public API, so the same
rules are checked both ways, and the two cannot drift. Scripted backends come from qmux.testing.
"""

from __future__ import annotations

import pytest

from qmux.testing import ServiceFactory

pytest_plugins = ["pytester"]  # tests/testing runs user test files through the plugin


@pytest.fixture
def service_factory(qmux_service_factory: ServiceFactory) -> ServiceFactory:
    """``async with service_factory(backends, settings) as service``: local, and remote (qmux_service_factory)."""
    return qmux_service_factory
