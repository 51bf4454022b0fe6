"""Several ``qmux serve`` nodes sharing one PostgreSQL journal, each backend owned by one node.

Configured by the ``[cluster]`` table (`ClusterSettings`) of ``qmux serve``'s config, with a
``postgresql://`` journal. How ownership, forwarding, fencing and recovery work: the docstring of
``qmux.cluster._node`` and the README's "Running several nodes". The settings and errors import
without a database driver; the node itself needs the ``postgres`` extra (psycopg), loaded on use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import LeaseLostError, lease_lost_in
from ._settings import ClusterSettings

if TYPE_CHECKING:
    from ._directory import Directory
    from ._node import Node, NodeStore, open_node

__all__ = ["ClusterSettings", "Directory", "LeaseLostError", "Node", "NodeStore", "lease_lost_in", "open_node"]

_NEEDS_PSYCOPG = {"Directory": "_directory", "Node": "_node", "NodeStore": "_node", "open_node": "_node"}


def __getattr__(name: str) -> Any:
    module = _NEEDS_PSYCOPG.get(name)
    if module is None:
        raise AttributeError(f"module 'qmux.cluster' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
