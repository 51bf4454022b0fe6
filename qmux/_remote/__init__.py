"""The remote client: ``qmux.connect(url, token=...)``, the same Python API over HTTP."""

from __future__ import annotations

from ._client import DEFAULT_URL, RemoteJobPort, RemoteService, RemoteSessionPort, RetryTransport, connect

__all__ = ["DEFAULT_URL", "RemoteJobPort", "RemoteService", "RemoteSessionPort", "RetryTransport", "connect"]
