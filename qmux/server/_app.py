"""The native API's front door: its dialect, and `create_app`, which serves it through the shared pipeline.

Every request goes through `qmux._http.HttpApp`'s steps (route, authenticate, admit, read within
limits, decode, handle, encode, log). What is the native API's own: its routes
(``_routes``), its handlers (``_api``), a strict dialect (a body or query parameter a route does
not take is refused: qmux's clients send none, so one is a mistake worth saying), and the
``Qmux-Pending-Jobs`` header on every authenticated answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .._core import Service
from .._http import Dialect, FrontDoor, HttpApp, ServiceView, Tenant, TokenAuth
from ._api import Api
from ._config import ServerSettings
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


def create_app(service: Service, tenants: Iterable[Tenant], settings: ServerSettings | None = None) -> HttpApp:
    """The HTTP API over `service`, for `tenants`. Serve it with hypercorn, or test it in memory."""
    view = ServiceView(service, settings or ServerSettings())
    return HttpApp.serving(native_door(view, tenants), view)
