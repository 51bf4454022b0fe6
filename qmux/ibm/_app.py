"""IBM's front door: its dialect, and `mount_ibm`, which serves it beside the native API.

Every request goes through the one pipeline (`qmux._http.HttpApp`), exactly as the native API's
do: route, authenticate, admit under the server's in-flight limit (shared by both APIs), read the
body within its limit, decode, handle, answer errors with the wire's ``{"error": {"message",
"code", ...}}`` body. What differs comes from serving a client qmux does not control, and is
declared here as data:

- authentication is IAM's: the bearer token is an access token from ``/identity/token`` (or a
  tenant's own token), see `IamTokens`; an API key refused there counts, like a 401, as a failed
  authentication of the client's address (the pipeline's throttle);
- the dialect is lenient: bodies may be JSON or form-encoded (IAM's token call is a form), and a
  body or query parameters a route does not take are ignored, as are unknown fields (the
  schemas say so);
- every answer carries an ``uber-trace-id`` header, as IBM's do: the client logs it with an
  error, and without it appends the raw JSON body to the error's message. The same id is in
  the request's log event;
- the status polls of ``GET /jobs/{id}`` (ten a second per waiting client) are logged at debug
  level (the route is ``quiet``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .._core import InvalidInputError, Service
from .._http import Dialect, FrontDoor, HttpApp, ServiceView, Tenant
from . import _codec
from ._api import IbmApi
from ._auth import IamTokens
from ._routes import IAM_PATH, ROUTES, owns

__all__ = ["IBM", "CompatApp", "IbmApp", "ibm_door", "mount_ibm"]

#: IBM's dialect
IBM: Final = Dialect(
    name="ibm",
    unknown_route="qmux serves the part of IBM's Runtime API that qiskit-ibm-runtime uses",
    unauthorized=(
        "this request needs Authorization: Bearer <token>, with an access token from "
        f"{IAM_PATH} (or a tenant's token) that this server issued and that has not expired"
    ),
    strict=False,
    forms=True,
    trace_header="uber-trace-id",
)

#: the app `mount_ibm` returns: the one pipeline's class (kept under its old names)
CompatApp = HttpApp
IbmApp = HttpApp


def ibm_door(view: ServiceView, tokens: IamTokens) -> FrontDoor:
    """IBM's Runtime API over `view`, authenticating with `tokens`."""
    return FrontDoor(
        routes=ROUTES,
        handlers=IbmApi(view, tokens),
        authenticate=tokens.tenant,
        dialect=IBM,
        owns=owns,
        credential_paths=frozenset({IAM_PATH}),  # a refused API key is a failed authentication
    )


def mount_ibm(
    native: HttpApp,
    service: Service,
    tenants: Iterable[Tenant],
    *,
    token_lifetime: int = 3600,
    token_key: bytes | None = None,
) -> HttpApp:
    """The native app with IBM's Runtime API in front of it (``qmux serve --ibm-compat``).

    IBM's paths (``/experimental/...``, ``/identity/token``) go to IBM's front door, all others to
    the native app's; both share its view of `service` (tenancy, shutdown) and its in-flight
    limit. Imports qiskit and qiskit-ibm-runtime's JSON codec first, in the calling thread, and
    raises `QiskitNotInstalledError` if the ``ibm`` extra is missing. `token_key` signs the access
    tokens ``/identity/token`` issues (default: a fresh random key; the nodes of a cluster share one,
    so that a token is valid on every node a request may be forwarded to).
    """
    if service is not native.view.service:
        raise InvalidInputError("mount_ibm serves the native app's own service; pass the service it was made with")
    _codec.require_ibm_runtime()
    return native.mount(ibm_door(native.view, IamTokens(tenants, lifetime=token_lifetime, key=token_key)))
