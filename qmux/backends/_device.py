"""What a simulated device looks like beyond the session rules: its couplings and its gate families.

`DeviceConfig` is a `qmux.BackendConfig` with three more keys of a ``[backends.<name>]`` table:

- ``coupling_map``: which pairs of qubits a two-qubit gate may act on. ``"full"`` (the default):
  any pair, as on a simulator or a trapped-ion device; ``"line"``, ``"ring"``, or
  ``"heavy_hex"`` (IBM's lattice: rows of qubits joined by bridge qubits, every qubit with at
  most three neighbours). The simulation honours it: a job whose circuit applies a gate to
  qubits that are not coupled fails, as it would on the device, with the pair and the fix
  (transpile for the backend's target). The couplings are symmetric.
- ``fractional_gates``: whether the device offers IBM's *fractional* gates (``rx``, ``rzz``,
  and every other gate with a continuous angle except the virtual ``rz``/``p``/``u1``), as IBM's
  Heron devices do. IBM's API lists them in the configuration only when true, which is what
  ``service.backend(name, use_fractional_gates=True)`` checks.
- ``mock``: a *mock* device, IBM's twin of a real one that ``dry_run=True`` jobs go to: listed
  with class ``"mock"`` and left out of listings unless they ask for mocks.

Backends built in Python with a plain `BackendConfig` have the defaults (`device_config`).
Nothing here imports qiskit: the couplings are plain pairs.
"""

from __future__ import annotations

import functools
import itertools
from typing import Final

import attrs
from attrs import field, frozen, validators

from .._core import BackendConfig, InvalidInputError, flag

__all__ = ["COUPLING_MAPS", "DeviceConfig", "coupled_pairs", "device_config"]

#: the values ``coupling_map`` takes
COUPLING_MAPS: Final = ("full", "line", "ring", "heavy_hex")


def _coupling_map(_instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if value not in COUPLING_MAPS:
        raise InvalidInputError(f"{attribute.name}={value!r} must be one of: {', '.join(map(repr, COUPLING_MAPS))}")


@frozen
class DeviceConfig(BackendConfig):
    """A `BackendConfig` that also says how the device's qubits are coupled and which gates it offers."""

    #: which qubit pairs a two-qubit gate may act on: "full", "line", "ring" or "heavy_hex"
    coupling_map: str = field(default="full", validator=_coupling_map)
    #: offers IBM's fractional gates (rx, rzz, ...), as a Heron does
    fractional_gates: bool = field(default=True, validator=flag)
    #: a mock device (IBM's dry-run twin): listed as class "mock", hidden unless asked for
    mock: bool = field(default=False, validator=validators.instance_of(bool))

    @property
    def is_full(self) -> bool:
        """Any pair of qubits is coupled: no pair needs to be listed."""
        return self.coupling_map == "full" or self.num_qubits < 2

    def pairs(self) -> tuple[tuple[int, int], ...]:
        """The coupled pairs, each in both directions, sorted; empty for ``"full"`` (any pair)."""
        return () if self.is_full else coupled_pairs(self.coupling_map, self.num_qubits)


def device_config(config: BackendConfig) -> DeviceConfig:
    """`config` as a `DeviceConfig`: itself, or with the device keys at their defaults."""
    if isinstance(config, DeviceConfig):
        return config
    return DeviceConfig(**attrs.asdict(config, recurse=False))


@functools.cache
def coupled_pairs(kind: str, num_qubits: int) -> tuple[tuple[int, int], ...]:
    """The directed pairs of coupling map `kind` on `num_qubits` qubits (both directions of each edge)."""
    if kind == "full":
        edges = {(a, b) for a in range(num_qubits) for b in range(a + 1, num_qubits)}
    elif kind == "line":
        edges = {(q, q + 1) for q in range(num_qubits - 1)}
    elif kind == "ring":
        edges = {(q, q + 1) for q in range(num_qubits - 1)}
        if num_qubits > 2:
            edges.add((0, num_qubits - 1))
    elif kind == "heavy_hex":
        edges = _heavy_hex(num_qubits)
    else:
        raise InvalidInputError(f"coupling_map={kind!r} must be one of: {', '.join(map(repr, COUPLING_MAPS))}")
    return tuple(sorted({(a, b) for a, b in edges} | {(b, a) for a, b in edges}))


def _heavy_hex(num_qubits: int) -> set[tuple[int, int]]:
    """IBM's heavy-hex lattice cut to `num_qubits`: rows of `width` qubits in a line, joined by bridges.

    Between row r and row r+1 a bridge qubit sits below every fourth column, starting at column
    0 under even rows and at column 2 under odd ones, so that the cells are hexagons whose edges
    carry an extra qubit (12 qubits make one cell: a ring). Qubits are numbered row, then its
    bridges, then the next row. A last row cut short may miss its bridge; its first qubit is then
    joined to the qubit numbered before it, so that the device stays connected.
    """
    width = 5 if num_qubits <= 24 else 9 if num_qubits <= 60 else 15
    edges: set[tuple[int, int]] = set()
    rows: list[list[int]] = []
    next_qubit = 0
    bridges_above: list[tuple[int, int]] = []  # (bridge qubit, column) waiting for the row below
    while next_qubit < num_qubits:
        row = list(range(next_qubit, min(next_qubit + width, num_qubits)))
        next_qubit += len(row)
        edges.update(itertools.pairwise(row))
        for bridge, column in bridges_above:
            if column < len(row):
                edges.add((bridge, row[column]))
        rows.append(row)
        first_column = 0 if len(rows) % 2 == 1 else 2
        bridges_above = []
        for column in range(first_column, width, 4):
            if next_qubit >= num_qubits or column >= len(row):
                break
            bridges_above.append((next_qubit, column))
            edges.add((row[column], next_qubit))
            next_qubit += 1
    return _connected(edges, num_qubits)


def _connected(edges: set[tuple[int, int]], num_qubits: int) -> set[tuple[int, int]]:
    """`edges` plus, for every part not reached from qubit 0, an edge from its lowest qubit to the one before."""
    parent = list(range(num_qubits))

    def root(q: int) -> int:
        while parent[q] != q:
            parent[q] = parent[parent[q]]
            q = parent[q]
        return q

    for a, b in edges:
        parent[root(a)] = root(b)
    for q in range(1, num_qubits):
        if root(q) != root(0):
            edges.add((q - 1, q))
            parent[root(q)] = root(q - 1)
    return edges
