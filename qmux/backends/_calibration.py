"""Synthetic calibration data of a simulated device: T1/T2, frequencies, readout and gate errors.

A real QPU is calibrated every day; its *properties* (what IBM's ``backend.properties()``
returns, and what qiskit's transpiler reads from the backend's ``Target`` to pick good qubits)
say how long each qubit keeps its state, how often reading it goes wrong, and how faulty and
how long each gate is on each qubit or coupled pair. A simulated device has none of that, so
`calibrate` makes it up, plausibly (figures of IBM's Eagle and Heron devices) and consistently:

- from a seed drawn from the device's name and shape, so the same backend shows the same
  figures on every call and after every restart, and two backends show different ones;
- per qubit and per coupled pair, shared by every gate family on them: all single-qubit gates
  on a qubit have that qubit's error, all two-qubit gates on a pair that pair's error (a swap,
  three times it), so the transpiler's choice of qubits is coherent;
- the virtual gates (``rz``, ``p``, ``u1``: frame changes in software) have no error and no
  duration, as on IBM's devices.

The simulation itself stays ideal; the figures describe the device, they do not add noise.
Nothing here imports qiskit: gates are given as (name, number of qubits).
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Iterable
from typing import Final

from attrs import frozen

from ._device import DeviceConfig

__all__ = ["VIRTUAL_GATES", "Calibration", "GateCalibration", "QubitCalibration", "calibrate"]

#: gates done in software, as changes of frame: no error, no duration
VIRTUAL_GATES: Final = frozenset({"rz", "p", "u1"})
_SINGLE_QUBIT_SECONDS: Final = 32e-9
_TWO_QUBIT_SECONDS: Final = 68e-9
_READOUT_SECONDS: Final = 1.56e-6
#: two-qubit gates made of several native ones, and how many
_COMPOSITE: Final = {"swap": 3, "iswap": 2, "dcx": 2}


@frozen
class QubitCalibration:
    """One qubit's figures, in SI units (seconds, hertz)."""

    t1: float
    t2: float
    frequency: float
    anharmonicity: float
    readout_error: float
    #: the probability of reading 0 when 1 was prepared, and 1 when 0 was
    prob_meas0_prep1: float
    prob_meas1_prep0: float
    readout_length: float


@frozen
class GateCalibration:
    """One gate on one qubit or ordered pair: its error probability and its duration in seconds."""

    gate: str
    qubits: tuple[int, ...]
    error: float
    length: float


@frozen
class Calibration:
    """A device's calibration: one entry per qubit, one per gate and qubits it may act on."""

    #: names this calibration; the same device and shape always get the same id
    calibration_id: str
    qubits: tuple[QubitCalibration, ...]
    gates: tuple[GateCalibration, ...]


def calibrate(name: str, device: DeviceConfig, gates: Iterable[tuple[str, int]]) -> Calibration:
    """The calibration of backend `name` for `gates` ((gate, number of qubits), as the device offers them).

    Single-qubit gates get an entry on every qubit, two-qubit gates on every coupled pair in both
    directions; with ``coupling_map = "full"`` two-qubit gates (and wider ones) get none: they apply
    to any qubits alike, which is how IBM describes a simulator.
    """
    shape = f"{name}/{device.num_qubits}/{device.coupling_map}"
    seed = zlib.crc32(shape.encode("utf-8"))
    rng = random.Random(seed)
    qubits = tuple(_qubit(rng) for _ in range(device.num_qubits))
    single = [_log_uniform(rng, 1.5e-4, 6e-4) for _ in range(device.num_qubits)]
    pair_error: dict[tuple[int, int], float] = {}
    for a, b in device.pairs():
        edge = (min(a, b), max(a, b))
        if edge not in pair_error:
            pair_error[edge] = _log_uniform(rng, 2e-3, 1e-2)
    entries: list[GateCalibration] = []
    for gate, width in sorted(gates):
        if width == 1:
            for qubit in range(device.num_qubits):
                if gate in VIRTUAL_GATES:
                    entries.append(GateCalibration(gate, (qubit,), 0.0, 0.0))
                else:
                    entries.append(GateCalibration(gate, (qubit,), single[qubit], _SINGLE_QUBIT_SECONDS))
        elif width == 2 and not device.is_full:
            repeat = _COMPOSITE.get(gate, 1)
            for a, b in device.pairs():
                error = 1 - (1 - pair_error[(min(a, b), max(a, b))]) ** repeat
                entries.append(GateCalibration(gate, (a, b), error, repeat * _TWO_QUBIT_SECONDS))
    return Calibration(f"{name}-{seed:08x}", qubits, tuple(entries))


def _qubit(rng: random.Random) -> QubitCalibration:
    t1 = rng.uniform(120e-6, 350e-6)
    t2 = min(2 * t1, rng.uniform(60e-6, 300e-6))
    readout = _log_uniform(rng, 6e-3, 4e-2)
    return QubitCalibration(
        t1=t1,
        t2=t2,
        frequency=rng.uniform(4.6e9, 5.3e9),
        anharmonicity=rng.uniform(-0.34e9, -0.3e9),
        readout_error=readout,
        # relaxation during the read-out makes a prepared 1 read as 0 more often than the reverse
        prob_meas0_prep1=min(1.0, 1.3 * readout),
        prob_meas1_prep0=0.7 * readout,
        readout_length=_READOUT_SECONDS,
    )


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))
