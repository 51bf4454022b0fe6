"""The exit statuses of the operators' commands: what a script may rely on.

=====  ================================================================================
 0     done: the answer is on stdout
 1     refused: no session or job with that id (or not yours), or a rule forbids the action
 2     usage: bad arguments, no token, or a command this qmux cannot run yet
 3     cannot connect: the server did not answer, or is shutting down
 4     unauthorized: the server does not know the token
 130   interrupted (Ctrl-C) before the answer; ``qmux watch`` and ``qmux top`` end with 0
=====  ================================================================================

A message saying what went wrong goes to stderr, never the token.
"""

from __future__ import annotations

import enum

from .._core import AuthenticationError, InvalidInputError, QmuxError, ServiceClosedError

__all__ = ["Exit", "exit_status"]


class Exit(enum.IntEnum):
    """The exit statuses (the table of the module docstring)."""

    OK = 0
    REFUSED = 1
    USAGE = 2
    UNREACHABLE = 3
    UNAUTHORIZED = 4
    INTERRUPTED = 130


def exit_status(error: QmuxError) -> Exit:
    """The status a command ends with when `error` stops it."""
    if isinstance(error, AuthenticationError):
        return Exit.UNAUTHORIZED
    if isinstance(error, ServiceClosedError):
        return Exit.UNREACHABLE
    if isinstance(error, InvalidInputError):
        return Exit.USAGE
    return Exit.REFUSED
