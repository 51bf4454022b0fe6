"""The primitives: `Sampler` and `Estimator`, on qiskit circuits, in sessions or in job mode.

qiskit is an optional extra (``pip install 'qmux[qiskit]'``): this package imports without it,
and making a primitive without it raises `QiskitNotInstalledError`, which says how to install it.
"""

from __future__ import annotations

from ._estimator import Estimator
from ._qiskit import QiskitNotInstalledError
from ._sampler import Sampler

__all__ = ["Estimator", "QiskitNotInstalledError", "Sampler"]
