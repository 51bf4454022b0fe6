"""qiskit is an optional extra: find it when a primitive needs it, or say how to install it.

Nothing under ``qmux`` imports qiskit when ``import qmux`` runs; the modules that need it
(PUB coercion, the simulated QPUs' programs) are imported only after `require_qiskit` passed.
"""

from __future__ import annotations

import importlib

from .._core import QiskitNotInstalledError

__all__ = ["QiskitNotInstalledError", "require_qiskit"]

INSTALL_HINT = "pip install 'qmux[qiskit]'"


def require_qiskit(what: str) -> None:
    """Import qiskit now, in the calling thread, or raise `QiskitNotInstalledError` naming `what`.

    Importing it here, on the Trio thread, also avoids a known trap: qiskit 2.6's ``qpy.load``
    crashed when qiskit was first imported inside a worker thread.
    """
    try:
        importlib.import_module("qiskit")
    except ImportError as exc:
        raise QiskitNotInstalledError(
            f"{what} needs qiskit, which is not installed; install it with: {INSTALL_HINT}"
        ) from exc
