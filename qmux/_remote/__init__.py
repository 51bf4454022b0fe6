"""The remote client: ``qmux.connect(url, token=...)``, the same Python API over HTTP."""

from __future__ import annotations

from ._asgi import StreamingASGITransport
from ._client import DEFAULT_URL, RemoteJobPort, RemoteService, RemoteSessionPort, RetryTransport, connect
from ._sse import RemoteEvents

__all__ = [
    "DEFAULT_URL",
    "RemoteEvents",
    "RemoteJobPort",
    "RemoteService",
    "RemoteSessionPort",
    "RetryTransport",
    "StreamingASGITransport",
    "connect",
]
