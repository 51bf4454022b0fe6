"""The native API's front door: its dialect, and `create_app`, which serves it through the shared pipeline.

Every request goes through `qmux._http.HttpApp`'s steps (route, authenticate, admit, read within
limits, decode, handle, encode, log). What is the native API's own: its routes
(``_routes``), its handlers (``_api``), a strict dialect (a body or query parameter a route does
not take is refused: qmux's clients send none, so one is a mistake worth saying), and the
``Qmux-Pending-Jobs`` header on every authenticated answer. In front of it, the operators' door
(``_operators``): health probes, and Prometheus metrics when ``[server] metrics`` turns them on; and
in front of both, the Jobs page (``_page``): ``GET /`` and its files, public, the page reading the
native API with the tenant's token. With `Peers` (one node of a cluster), the native API's requests
are answered by the node that holds what they name, or by every node, merged, as each route's
``locate`` says; the operators' and the page's are this node's own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import httpx

from .._core import Service
from .._http import Dialect, FrontDoor, HttpApp, Peers, ServiceView, Tenant, TokenAuth
from ._api import Api
from ._config import ServerSettings
from ._health import Health
from ._journal import WatchedJournal
from ._metrics import Metrics
from ._operators import Operators, operators_door
from ._page import page_door
from ._routes import ROUTES

__all__ = ["NATIVE", "QmuxApp", "create_app", "native_door"]

#: the native API's dialect
NATIVE: Final = Dialect(
    name="native",
    unknown_route="see /openapi.json",
    unauthorized="this request needs Authorization: Bearer <token> with a token the server knows",
    strict=True,
)

#: the ASGI app `create_app` returns (the one pipeline's class; kept under its old name)
QmuxApp = HttpApp


def native_door(view: ServiceView, tenants: Iterable[Tenant]) -> FrontDoor:
    """The native API over `view`, for `tenants`."""
    tenants = tuple(tenants)
    api = Api(view, {tenant.name: tenant.token_sha256 for tenant in tenants})
    return FrontDoor(
        routes=ROUTES,
        handlers=api,
        authenticate=TokenAuth(tenants).tenant,
        dialect=NATIVE,
        answer_headers=api.pending_jobs_header,
    )


def create_app(
    service: Service,
    tenants: Iterable[Tenant],
    settings: ServerSettings | None = None,
    *,
    journal: WatchedJournal | None = None,
    peers: Peers | None = None,
    peer_transport: httpx.AsyncBaseTransport | None = None,
) -> HttpApp:
    """The HTTP API over `service`, for `tenants`. Serve it with hypercorn, or test it in memory.

    `journal`: the store `service` writes to, watched, so that ``/readyz`` checks it and the
    metrics follow the work it recovered (`qmux.server.serve` passes it); none: no journal check.
    `peers`: this node's view of its cluster; a request for what another node holds is answered
    by that node, and listings, usage and events are every node's (none: one node, as always).
    `peer_transport`: how this node reaches the others (default: the network; tests: in memory).
    Close the app (`HttpApp.aclose`, or the ASGI lifespan's shutdown) to close its connections
    to the others.
    """
    settings = settings or ServerSettings()
    tenants = tuple(tenants)
    view = ServiceView(service, settings)
    native = native_door(view, tenants)
    metrics: Metrics | None = None
    if settings.metrics != "off":
        metrics = Metrics.of(
            service, tenant_label=settings.metrics_tenant_label, limit=max(2 * service.settings.retain_finished, 1000)
        )
        if journal is not None:
            metrics.follow(journal.recovered)
        view.observers.append(metrics.took)
    operators = operators_door(
        Operators(Health(view, journal), metrics),
        mode=settings.metrics,
        token_sha256=settings.metrics_token_sha256,
        tenants=tenants,
        answer_headers=native.answer_headers,
    )
    app = HttpApp.serving(native, view, peers=peers, peer_transport=peer_transport).mount(operators).mount(page_door())
    if metrics is not None:
        app.observe(metrics.answered)
    return app
