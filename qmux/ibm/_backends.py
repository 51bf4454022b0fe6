"""qmux backends as IBM's client sees them: the configuration and properties its ``Target`` is built from.

The client builds a backend's ``Target`` (what qiskit's transpiler lays circuits out on, and
what its ISA check holds circuits against) from two documents, made here from the backend's
`qmux.backends._device.DeviceConfig`:

- the *configuration*: the basis, the supported non-unitary instructions, the coupling map,
  and for a device whose coupling map is not ``"full"``, the qubits each gate may act on;
- the *properties*: the device's calibration (`qmux.backends._calibration`): T1, T2,
  frequency and readout error of each qubit, error and duration of each gate on each qubit
  and coupled pair. They are what makes each instruction of the ``Target`` *per qubit*, so that
  the transpiler picks good, coupled qubits; the client caches them (it asks again only on
  ``refresh()``). A gate entry is known by its ``gate`` and ``qubits``, as the client indexes
  it; it has no ``name``: IBM's optional label (gate then qubits, ``"t11"`` for ``t`` on qubit
  11) reads as a date to a date parser (the 11th), and dates belong in the ``date`` fields only.

The basis is every standard gate of qiskit that acts on one or two qubits (and, on a ``"full"``
coupling map, wider ones too), so that an untranspiled circuit of ordinary gates (``h``, ``cx``,
``measure``) passes the client's ISA check wherever its qubits are coupled. A device without
``fractional_gates`` leaves IBM's fractional gates out (every gate with a continuous angle
except the virtual ``rz``, ``p``, ``u1``); the client drops them itself unless asked
(``use_fractional_gates=True``), and refuses to ask a device that lists neither ``rx`` nor ``rzz``.
``measure``, ``reset`` and ``delay`` are the non-unitary instructions offered.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any, Final

from .._core import BackendHandle
from ..backends._calibration import Calibration, calibrate
from ..backends._device import DeviceConfig, device_config
from ._schemas import BackendConfiguration

__all__ = ["SUPPORTED_INSTRUCTIONS", "basis_gates", "calibration", "configuration", "offered_gates", "properties"]

#: the largest shots a PUB may ask for, as IBM's devices state it
MAX_SHOTS = 100_000
#: the largest number of PUBs a job may carry (IBM's ``max_experiments``)
MAX_EXPERIMENTS = 300
#: the non-unitary instructions the simulation runs
SUPPORTED_INSTRUCTIONS: Final = ("delay", "measure", "reset")
_NON_UNITARY = ("measure", "delay", "reset", "global_phase")
#: angles IBM's devices apply in software (frame changes): not fractional gates
_VIRTUAL = ("rz", "p", "u1")


@functools.cache
def _standard_gates() -> Mapping[str, tuple[int, tuple[str, ...]]]:
    """qiskit's standard gates bar the non-unitary ones: name -> (qubits, parameter names)."""
    from qiskit.circuit.library.standard_gates import get_standard_gate_name_mapping

    return {
        name: (gate.num_qubits, tuple(str(param) for param in gate.params))
        for name, gate in get_standard_gate_name_mapping().items()
        if name not in _NON_UNITARY
    }


def is_fractional(name: str) -> bool:
    """IBM's definition: a gate with a continuous angle that takes device time (all but rz, p, u1)."""
    return bool(_standard_gates()[name][1]) and name not in _VIRTUAL


def offered_gates(config: DeviceConfig) -> dict[str, int]:
    """The gates the device offers, with how many qubits each acts on (see the module docstring)."""
    return {
        name: width
        for name, (width, _) in _standard_gates().items()
        if (config.fractional_gates or not is_fractional(name)) and (config.is_full or width <= 2)
    }


def basis_gates(config: DeviceConfig | None = None) -> tuple[str, ...]:
    """The configuration's ``basis_gates`` for `config` (default: a full, fractional device)."""
    return tuple(sorted(offered_gates(config if config is not None else DeviceConfig())))


@functools.cache
def calibration(name: str, config: DeviceConfig) -> Calibration:
    """The backend's calibration (`qmux.backends._calibration.calibrate`): the same on every call."""
    return calibrate(name, config, offered_gates(config).items())


def configuration(handle: BackendHandle, *, version: str, online_date: str) -> BackendConfiguration:
    """The backend's configuration document (see the module docstring for the choices)."""
    config = device_config(handle.config)
    gates = offered_gates(config)
    n = config.num_qubits
    pairs = list(config.pairs()) if not config.is_full else _all_pairs(n)
    gate_entries: list[dict[str, Any]] = []
    if not config.is_full:  # each gate on the qubits it may act on, even for readers of this document alone
        one = [[qubit] for qubit in range(n)]
        for name, width in sorted(gates.items()):
            gate_entries.append(
                {
                    "name": name,
                    "parameters": list(_standard_gates()[name][1]),
                    "qasm_def": "",
                    "coupling_map": one if width == 1 else [list(pair) for pair in pairs],
                }
            )
    return BackendConfiguration(
        backend_name=handle.name,
        backend_version=version,
        online_date=online_date,
        n_qubits=n,
        basis_gates=sorted(gates),
        gates=gate_entries,
        coupling_map=pairs,
        supported_instructions=list(SUPPORTED_INSTRUCTIONS),
        local=False,
        simulator=config.simulator,
        conditional=False,
        open_pulse=False,
        memory=True,
        max_shots=MAX_SHOTS,
        max_experiments=MAX_EXPERIMENTS,
        description=f"qmux simulated {'simulator' if config.simulator else 'QPU'} ({n} qubits, "
        f"{config.coupling_map} coupling map)",
        max_ttl=config.max_ttl,
        interactive_ttl=config.interactive_ttl,
        calibration_id=calibration(handle.name, config).calibration_id,
    )


def properties(handle: BackendHandle, *, version: str, updated: dt.datetime) -> dict[str, Any]:
    """The backend's properties document: its calibration in IBM's units, dated `updated`."""
    config = device_config(handle.config)
    figures = calibration(handle.name, config)
    date = updated.isoformat(timespec="seconds").replace("+00:00", "Z")

    def nduv(name: str, unit: str, value: float) -> dict[str, Any]:
        return {"date": date, "name": name, "unit": unit, "value": value}

    qubits = [
        [
            nduv("T1", "us", qubit.t1 * 1e6),
            nduv("T2", "us", qubit.t2 * 1e6),
            nduv("frequency", "GHz", qubit.frequency / 1e9),
            nduv("anharmonicity", "GHz", qubit.anharmonicity / 1e9),
            nduv("readout_error", "", qubit.readout_error),
            nduv("prob_meas0_prep1", "", qubit.prob_meas0_prep1),
            nduv("prob_meas1_prep0", "", qubit.prob_meas1_prep0),
            nduv("readout_length", "ns", qubit.readout_length * 1e9),
        ]
        for qubit in figures.qubits
    ]
    gates = [
        {
            "qubits": list(gate.qubits),
            "gate": gate.gate,
            "parameters": [nduv("gate_error", "", gate.error), nduv("gate_length", "ns", gate.length * 1e9)],
        }
        for gate in figures.gates
    ]
    return {
        "backend_name": handle.name,
        "backend_version": version,
        "last_update_date": date,
        "calibration_id": figures.calibration_id,
        "qubits": qubits,
        "gates": gates,
        "general": [],
    }


@functools.cache
def _all_pairs(num_qubits: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(num_qubits) for b in range(num_qubits) if a != b]
