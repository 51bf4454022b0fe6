"""The remote client: ``qmux.connect(url, token=...)``, the same Python API over HTTP, to one node or several."""

from __future__ import annotations

from ._asgi import StreamingASGITransport
from ._client import RemoteJobPort, RemoteService, RemoteSessionPort, connect
from ._errors import OutcomeUnknownError
from ._nodes import DEFAULT_URL, Nodes
from ._sse import RemoteEvents
from ._transport import NodesFailed, OutcomeUnknown, RetryTransport

__all__ = [
    "DEFAULT_URL",
    "Nodes",
    "NodesFailed",
    "OutcomeUnknown",
    "OutcomeUnknownError",
    "RemoteEvents",
    "RemoteJobPort",
    "RemoteService",
    "RemoteSessionPort",
    "RetryTransport",
    "StreamingASGITransport",
    "connect",
]
