"""The one error only the remote client raises: a request whose outcome it cannot know."""

from __future__ import annotations

from typing import final

from .._core import QmuxError

__all__ = ["OutcomeUnknownError"]


@final
class OutcomeUnknownError(QmuxError):
    """A request that is not safe to send twice (a job's submission) reached a node, perhaps, and
    the connection broke before its answer: it may or may not have taken effect, so it was not
    sent again. The message says how to look; `node` is the node it was sent to.

    Not a `ServiceClosedError` on purpose: code that sends again what could not be sent must not
    send this again before it has looked.
    """

    def __init__(self, message: str, *, node: str) -> None:
        super().__init__(message)
        self.node = node
