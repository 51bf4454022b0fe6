"""Errors on the wire: a qmux exception as an HTTP status and a JSON body, and back.

An error travels as ``{"error": {"code", "message", "type", ...}}``: IBM's ``error.message`` and
``error.code``, plus the qmux exception's class name and fields, with the HTTP status of
`error_status`. `error_from_wire` rebuilds the same qmux exception on the client.
"""

from __future__ import annotations

import builtins
from typing import Any, Final

from .._core import (
    AuthenticationError,
    BackendNotFoundError,
    BackendUnavailableError,
    CapacityError,
    ClosedReason,
    InvalidInputError,
    JobCancelledError,
    JobError,
    JobFailedError,
    JobNotFoundError,
    NotFoundError,
    QmuxError,
    ServiceClosedError,
    SessionClosedError,
    SessionCrashedError,
    SessionNotFoundError,
    StorageError,
)

__all__ = ["error_from_wire", "error_status", "error_to_wire"]

#: most specific first: the first class an error is an instance of gives its status and code
_ERRORS: Final[tuple[tuple[type[QmuxError], int, str], ...]] = (
    (AuthenticationError, 401, "unauthorized"),
    (InvalidInputError, 422, "invalid_input"),
    (BackendNotFoundError, 404, "backend_not_found"),
    (SessionNotFoundError, 404, "session_not_found"),
    (JobNotFoundError, 404, "job_not_found"),
    (NotFoundError, 404, "not_found"),
    (BackendUnavailableError, 409, "backend_unavailable"),
    (SessionCrashedError, 409, "session_crashed"),
    (SessionClosedError, 409, "session_closed"),
    (JobCancelledError, 409, "job_cancelled"),
    (JobFailedError, 409, "job_failed"),
    (CapacityError, 429, "capacity"),
    (ServiceClosedError, 503, "service_closed"),
    (StorageError, 503, "storage"),
)
_BY_NAME: Final[dict[str, type[QmuxError]]] = {cls.__name__: cls for cls, _, _ in _ERRORS} | {"QmuxError": QmuxError}


def error_status(error: QmuxError) -> tuple[int, str]:
    """The HTTP status and the error code that `error` answers with."""
    for cls, status, code in _ERRORS:
        if isinstance(error, cls):
            return status, code
    return 500, "error"


def error_to_wire(error: QmuxError, *, code: str | None = None) -> dict[str, Any]:
    """The JSON error body for `error`: what went wrong, and the fields to rebuild it from."""
    body: dict[str, Any] = {
        "code": code or error_status(error)[1],
        "message": str(error),
        "type": next((cls.__name__ for cls, _, _ in _ERRORS if type(error) is cls), "QmuxError"),
    }
    if isinstance(error, SessionClosedError):
        body.update(session_id=error.session_id, reason=error.reason.value, root_job_id=error.root_job_id)
    if isinstance(error, JobError):
        body.update(job_id=error.job_id, reason=error.reason)
    cause = error.__cause__
    if isinstance(cause, QmuxError) and cause is not error:  # e.g. the SessionClosedError behind a failed job
        body["cause"] = {key: value for key, value in error_to_wire(cause)["error"].items() if key != "cause"}
    elif isinstance(cause, Exception):  # a backend's own error, kept as the job error's cause (SPEC J3)
        body["cause"] = {"type": type(cause).__name__, "message": str(cause)}
    return {"error": body}


def error_from_wire(status: int, body: object) -> QmuxError:
    """The qmux exception an error response stands for; unknown shapes map by status.

    A cause travels as its type's name and message; it is rebuilt when the type is a qmux
    error or a built-in exception, so ``error.__cause__`` reads as it does in process.
    """
    detail = body.get("error") if isinstance(body, dict) else None
    if not isinstance(detail, dict):
        detail = {}
    error = _error_from_detail(status, detail)
    error.__cause__ = _cause_from_wire(detail.get("cause"))
    return error


def _cause_from_wire(cause: object) -> BaseException | None:
    if not isinstance(cause, dict):
        return None
    name, message = str(cause.get("type")), str(cause.get("message", ""))
    if name in _BY_NAME:
        return _error_from_detail(500, cause)
    cls: object = getattr(builtins, name, None)
    if not isinstance(cls, type) or not issubclass(cls, Exception):
        return None
    try:
        return cls(message)
    except Exception:  # a built-in that wants other arguments
        return None


def _error_from_detail(status: int, detail: dict[str, Any]) -> QmuxError:
    message = str(detail.get("message") or f"the server answered HTTP {status}")
    cls = _BY_NAME.get(str(detail.get("type")))
    if cls is None:
        cls = _FALLBACK.get(status, QmuxError)
    try:
        if issubclass(cls, SessionClosedError):
            reason = ClosedReason(detail.get("reason", ClosedReason.CLOSED.value))
            root = detail.get("root_job_id")
            return cls(
                message,
                session_id=str(detail.get("session_id", "")),
                reason=reason,
                root_job_id=str(root) if root is not None else None,
            )
        if issubclass(cls, JobError):
            reason_text = detail.get("reason")
            return cls(
                message,
                job_id=str(detail.get("job_id", "")),
                reason=str(reason_text) if reason_text is not None else None,
            )
    except ValueError:  # an unknown closed reason: keep the message, lose the detail
        return QmuxError(message)
    return cls(message)


_FALLBACK: Final[dict[int, type[QmuxError]]] = {
    400: InvalidInputError,
    401: AuthenticationError,
    404: NotFoundError,
    413: InvalidInputError,
    415: InvalidInputError,
    422: InvalidInputError,
    429: CapacityError,
    503: ServiceClosedError,
}
