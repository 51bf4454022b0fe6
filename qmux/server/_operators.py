"""The operators' front door: ``GET /livez``, ``GET /readyz`` and ``GET /metrics``.

A front door of its own in the one pipeline (`qmux._http.FrontDoor`), mounted before the native
API, because who may call it is not a tenant: the health probes are public, and ``/metrics``
shows every tenant's work, so it takes its own token (``[server] metrics = "token"``), none
(``"public"``), or is off (answers 404, to a tenant's token as to any; without a token, 401 as
every other route). None of the three counts against the in-flight limit (`Route.bounded`):
they must answer when the server is busiest. The routes are described in ``/openapi.json``
with the native API's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Final, final

from attrs import frozen

from .._core import NotFoundError
from .._http import RAW_TEXT, Dialect, FrontDoor, Reply, Request, Route, Tenant, TokenAuth
from ._health import Health, HealthQuery, HealthReport
from ._metrics import CONTENT_TYPE, Metrics

__all__ = ["OPERATORS", "OPS_PATHS", "OPS_ROUTES", "Operators", "operators_door"]

#: the operators' dialect: the native API's, with its own 401
OPERATORS: Final = Dialect(
    name="operators",
    unknown_route="see /openapi.json",
    unauthorized="GET /metrics needs Authorization: Bearer <the metrics token>, whose SHA-256 is the server's "
    "[server] metrics_token_sha256",
    strict=True,
)
#: what the authenticator of a public /metrics calls whoever asks
_ANYONE: Final = "operator"


@final
@frozen
class Operators:
    """The handlers of the operators' routes."""

    health: Health
    #: ``None``: metrics are off (``GET /metrics`` answers 404)
    metrics: Metrics | None

    async def livez(self, request: Request) -> Reply:
        query: HealthQuery = request.query
        return Reply.json(200, HealthReport.of(self.health.live(), verbose=query.wanted))

    async def readyz(self, request: Request) -> Reply:
        query: HealthQuery = request.query
        report = HealthReport.of(await self.health.ready(), verbose=query.wanted)
        return Reply.json(200 if report.status == "ok" else 503, report)

    async def metrics_text(self, request: Request) -> Reply:
        if self.metrics is None:
            raise NotFoundError(
                'metrics are off on this server; turn them on with [server] metrics = "token" or "public"'
            )
        return Reply(200, await self.metrics.exposition(), {"content-type": CONTENT_TYPE})


OPS_ROUTES: Final[tuple[Route, ...]] = (
    Route(
        "GET",
        "/livez",
        "get_livez",
        "Liveness: the server answers (no token)",
        Operators.livez,
        ok={200: HealthReport},
        query=HealthQuery,
        public=True,
        quiet=True,
        bounded=False,
        description="`?verbose` lists the checks. Not counted against the in-flight limit.",
    ),
    Route(
        "GET",
        "/readyz",
        "get_readyz",
        "Readiness: the journal writes, a backend is operational, the server is not shutting down (no token)",
        Operators.readyz,
        ok={200: HealthReport, 503: HealthReport},
        query=HealthQuery,
        public=True,
        quiet=True,
        bounded=False,
        description="200 when every check passes, 503 when one fails; `?verbose` lists each check with what it "
        "found. Not counted against the in-flight limit.",
    ),
    Route(
        "GET",
        "/metrics",
        "get_metrics",
        "Prometheus metrics, in the text exposition format",
        Operators.metrics_text,
        ok={200: RAW_TEXT},
        errors=(404,),
        quiet=True,
        bounded=False,
        description='Needs `Bearer <the metrics token>` when `[server] metrics = "token"`, no token when it is '
        '"public"; answers 404 when it is "off" (the default). Not counted against the in-flight limit.',
    ),
)
#: the paths the operators' door answers
OPS_PATHS: Final = frozenset(route.path for route in OPS_ROUTES)


def operators_door(
    operators: Operators,
    *,
    mode: str,
    token_sha256: str | None,
    tenants: Iterable[Tenant],
    answer_headers: Callable[[], Mapping[str, str]] | None = None,
) -> FrontDoor:
    """The operators' door; `mode` and `token_sha256` are ``[server] metrics`` and ``metrics_token_sha256``.

    Off, ``/metrics`` authenticates as the native API does (a tenant's token) and answers 404;
    with a token, only that token is let in; public, anyone is.
    """
    authenticate: Callable[[str | None], str | None]
    if mode == "token" and token_sha256 is not None:
        authenticate = TokenAuth([Tenant(_ANYONE, token_sha256)]).tenant
    elif mode == "public":
        authenticate = _anyone
    else:
        authenticate = TokenAuth(tenants).tenant
    return FrontDoor(
        routes=OPS_ROUTES,
        handlers=operators,
        authenticate=authenticate,
        dialect=OPERATORS,
        owns=OPS_PATHS.__contains__,
        answer_headers=answer_headers,
    )


def _anyone(authorization: str | None) -> str:
    return _ANYONE
