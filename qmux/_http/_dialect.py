"""A front door's dialect: how it says no, and how much of what it was not asked it lets pass.

Both front doors answer errors with the wire's body (`qmux._wire.error_to_wire`):
``{"error": {"code", "message", "type", ...}}``, which is IBM's ``error.message`` and ``error.code``
with the fields that rebuild the same qmux exception on a qmux client; a qmux error answers with
the status `qmux._wire.error_status` gives its class, a refusal (`HttpError`) with its own. What
differs from one front door to the other is data, declared in its `Dialect`: the hint of its
404, what its 401 asks for, whether a body or query parameters a route does not take are refused
(qmux's own clients) or ignored (a client qmux does not control), whether bodies may be forms,
and whether each answer carries a trace id.
"""

from __future__ import annotations

import msgspec
from attrs import frozen

from .. import _wire
from .._core import QmuxError
from ._messages import HttpError, Reply

__all__ = ["Dialect", "ErrorBody", "ErrorCause", "ErrorDetail"]


@frozen
class Dialect:
    """How one front door speaks where the pipeline answers for it."""

    #: the front door's name in log lines (``api=...``)
    name: str
    #: the end of the 404 for a path that is no route: where the routes are described
    unknown_route: str
    #: the 401's message: the credential this front door wants
    unauthorized: str
    #: refuse (400, 422) a body or query parameters a route does not take; else ignore them
    strict: bool = True
    #: also read ``application/x-www-form-urlencoded`` bodies
    forms: bool = False
    #: a response header that carries a fresh id per request (also in the request's log line)
    trace_header: str | None = None

    def error(self, error: QmuxError) -> Reply:
        """The answer to a qmux error a handler raised: its class's status, the wire's body."""
        status, code = _wire.error_status(error)
        return Reply.json(status, _wire.error_to_wire(error, code=code))

    def refusal(self, refusal: HttpError) -> Reply:
        """The answer to a refusal: its own status, code and headers, the wire's body."""
        body = _wire.error_to_wire(refusal.error, code=refusal.code)
        return Reply.json(refusal.status, body, headers=refusal.headers)


# -- the error body, as a schema (for the OpenAPI document; `_wire.error_to_wire` writes it) -------


class _Body(msgspec.Struct, kw_only=True):
    pass


class ErrorCause(_Body):
    """The exception behind an error: a backend's own (type and message), or a qmux error's fields."""

    type: str
    message: str
    code: str | None = None
    reason: str | None = None
    session_id: str | None = None
    root_job_id: str | None = None
    job_id: str | None = None


class ErrorDetail(_Body):
    """What went wrong, and the fields a client needs to rebuild the same qmux exception."""

    code: str
    message: str
    #: the qmux exception class: ``InvalidInputError``, ``SessionClosedError``, ...
    type: str
    #: the rule that closed a session, or a failed job's cause
    reason: str | None = None
    session_id: str | None = None
    root_job_id: str | None = None
    job_id: str | None = None
    cause: ErrorCause | None = None


class ErrorBody(_Body):
    """Every error answer: IBM's ``{"error": {"message", "code"}}`` with qmux's fields added."""

    error: ErrorDetail
