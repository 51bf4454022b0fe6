"""qmux backends as IBM's client sees them: the configuration document its ISA check reads.

What matters to the client, and so what is chosen here:

- ``simulator`` is the backend's own flag. The client opens no session on a simulator (its
  jobs run in job mode, as on IBM's cloud), so sessions need ``simulator = false`` backends.
- The basis is every standard gate the simulation runs, with no per-qubit gate entries and
  no properties: each gate is then *global* in the client's ``Target``, so an untranspiled
  circuit of ordinary gates (``h``, ``cx``, ``measure``, ...) passes its ISA check on any
  qubits. The client itself drops the fractional gates (``rx``, ``ry``, ``rzz``, ...) unless it
  is asked for them (``use_fractional_gates=True``); a circuit that uses them otherwise is
  transpiled first, as for IBM's devices:
  ``generate_preset_pass_manager(backend=backend, optimization_level=1).run(circuit)``.
- ``measure`` and ``delay`` are the non-unitary instructions offered: the statevector
  simulation behind the sampler and estimator has no mid-circuit reset or control flow.
"""

from __future__ import annotations

import functools
import itertools

from .._core import BackendHandle
from ._schemas import BackendConfiguration

__all__ = ["basis_gates", "configuration"]

#: the largest shots a PUB may ask for, as IBM's devices state it
MAX_SHOTS = 100_000
#: the largest number of PUBs a job may carry (IBM's ``max_experiments``)
MAX_EXPERIMENTS = 300
_NON_UNITARY = ("measure", "delay", "reset", "global_phase")


@functools.cache
def basis_gates() -> tuple[str, ...]:
    """qiskit's standard gates, bar the non-unitary instructions (offered separately) and global phase."""
    from qiskit.circuit.library.standard_gates import get_standard_gate_name_mapping

    return tuple(sorted(name for name in get_standard_gate_name_mapping() if name not in _NON_UNITARY))


@functools.cache
def _all_pairs(num_qubits: int) -> list[tuple[int, int]]:
    return list(itertools.permutations(range(num_qubits), 2))


def configuration(handle: BackendHandle, *, version: str, online_date: str) -> BackendConfiguration:
    """The backend's configuration document (see the module docstring for the choices)."""
    config = handle.config
    return BackendConfiguration(
        backend_name=handle.name,
        backend_version=version,
        online_date=online_date,
        n_qubits=config.num_qubits,
        basis_gates=list(basis_gates()),
        gates=[],
        coupling_map=_all_pairs(config.num_qubits),
        supported_instructions=["measure", "delay"],
        local=False,
        simulator=config.simulator,
        conditional=False,
        open_pulse=False,
        memory=True,
        max_shots=MAX_SHOTS,
        max_experiments=MAX_EXPERIMENTS,
        description=f"qmux simulated {'simulator' if config.simulator else 'QPU'} ({config.num_qubits} qubits)",
        max_ttl=config.max_ttl,
        interactive_ttl=config.interactive_ttl,
    )
