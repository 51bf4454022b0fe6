"""The operations both APIs serve alike, written once: read, close and cancel a session, a backend's status.

Each API's route table names these handlers beside its own (a route is an API's; what it does
may be shared). They are called with the API's handler object, which holds the `ServiceView`.
"""

from __future__ import annotations

from typing import Protocol

from .._core import InvalidInputError
from ._documents import BackendStatus, session_document
from ._messages import Reply, Request
from ._view import ServiceView

__all__ = ["HasView", "backend_status", "cancel_session", "close_session", "get_session"]


class HasView(Protocol):
    """An API's handler object: it reaches the service through a `ServiceView`."""

    @property
    def view(self) -> ServiceView: ...


class _SessionUpdate(Protocol):
    @property
    def accepting_jobs(self) -> bool: ...


async def get_session(api: HasView, request: Request) -> Reply:
    """A session's details (SPEC S17, S18)."""
    session = await api.view.session(request.tenant, request.params["session_id"])
    return Reply.json(200, session_document(await session.details()))


async def close_session(api: HasView, request: Request) -> Reply:
    """``{"accepting_jobs": false}`` closes a session: its queued jobs still run (SPEC S12); harmless twice."""
    body: _SessionUpdate = request.body
    session = await api.view.session(request.tenant, request.params["session_id"])
    if body.accepting_jobs:
        raise InvalidInputError(
            'a session cannot start accepting jobs again; the one change allowed is {"accepting_jobs": false}, '
            "which closes it"
        )
    await session.close()
    return Reply.empty()


async def cancel_session(api: HasView, request: Request) -> Reply:
    """Cancel a session: queued jobs fail as cancelled, running ones finish (SPEC S13); harmless twice."""
    session = await api.view.session(request.tenant, request.params["session_id"])
    await session.cancel()
    return Reply.empty()


async def backend_status(api: HasView, request: Request) -> Reply:
    """One backend's status, IBM's shape."""
    return Reply.json(200, BackendStatus.of(api.view.service.backend(request.params["backend"])))
