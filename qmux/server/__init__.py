"""The HTTP front door: a qmux service served over a REST API modelled on IBM's Runtime API.

``qmux serve --config qmux.toml`` runs it; `serve` does the same from Python, and `create_app`
gives the bare ASGI application (for tests with ``httpx.ASGITransport``, or another ASGI
server). Clients reach it with ``qmux.connect(url, token=...)``, which gives them the same
Python API as ``qmux.open_service()``. Needs the ``server`` extra: ``pip install 'qmux[server]'``.

Routes, their bodies and answers are described at ``GET /openapi.json``; the JSON encoding of
job inputs and results is documented in `qmux._wire`. For operators: ``GET /livez`` and
``GET /readyz`` (health, no token) and ``GET /metrics`` (Prometheus, when ``[server] metrics``
turns it on), in ``_operators``, ``_health`` and ``_metrics``. For people: the Jobs page at ``GET /``
(``_page``; its HTML, CSS and JavaScript in ``page/``), which reads this API with a tenant's token.
"""

from __future__ import annotations

from ._app import QmuxApp, create_app
from ._auth import Tenant, token_digest
from ._config import ServerConfig, ServerSettings, config_from_mapping, load_config
from ._serve import LEASE_LOST, serve

__all__ = [
    "LEASE_LOST",
    "QmuxApp",
    "ServerConfig",
    "ServerSettings",
    "Tenant",
    "config_from_mapping",
    "create_app",
    "load_config",
    "serve",
    "token_digest",
]
