"""Backends described in a TOML file: `load_backends`.

The schema: one table per backend under ``[backends]``, named by its key. Every key is optional
and takes the default shown::

    [backends.fake_sherbrooke]
    num_qubits = 127          # qubits the device offers; wider circuits fail their job
    simulator = false         # a simulator rather than a QPU (least_busy filters on it)
    operational = true        # false: it refuses new sessions and jobs
    max_ttl = "8h"            # longest session max_time: seconds, or "90s", "25m", "1h30m"
    interactive_ttl = "60s"   # ITTL: how long an idle active session keeps the device
    concurrency = 1           # jobs at once; 1 for a QPU
    idempotent = false        # true: a job interrupted by a restart runs again rather than failing
    job_timeout = "10m"       # a job running longer is stopped and fails (default: no limit)
    retries = 0               # more runs for a job that raises TransientBackendError (SPEC R1)
    retry_backoff = "1s"      # wait before the first retry; each further retry waits twice as long
    job_seconds = 0           # device time per job: seconds, or a duration such as "2s"
    seed = 1234               # seeds every job that brings no seed: same inputs, same results
    max_simulated_qubits = 20 # widest circuit the statevector simulation takes
    coupling_map = "full"     # qubit pairs a 2-qubit gate may join: "full", "line", "ring", "heavy_hex"
    fractional_gates = true   # offers IBM's fractional gates (rx, rzz, ...), as a Heron does
    mock = false              # IBM's dry-run twin of a device: class "mock" in IBM's listing

The keys are the fields of `DeviceConfig` (`qmux.BackendConfig` and the device's own: coupling,
gates, mock; see `qmux.backends._device`) and of `LocalBackend` (``_FILE_KEYS``), read
by ``qmux._config``: a field added to either class is a key here at once, with its default and
its validator. A mistake (unknown key, wrong type, value out of range, no backend at all) is an
`InvalidInputError` that names the file, the table (``[backends.fake_x]``), the key and what
is allowed; every mistake of the file is listed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

import attrs
from attrs import field, frozen
from cattrs.errors import IterableValidationError, IterableValidationNote

from .._config import TableError, converter, read_toml, register_table, structure, toml_type
from .._core import at_least_one
from ._device import DeviceConfig
from ._local import LocalBackend

__all__ = ["backends_from_mapping", "load_backends", "structure_backends"]

#: `LocalBackend` fields that are not keys: the table's own name, the `BackendConfig` its other
#: keys make, program functions (code, not data), and a tuning knob for virtual clocks
_NOT_KEYS: Final = frozenset({"name", "config", "programs", "inline_seconds"})


def _copy(attribute: attrs.Attribute[Any]) -> Any:
    return field(default=attribute.default, validator=attribute.validator, type=attribute.type)


def _table_class() -> type:
    """One class whose fields are a backend table's keys: DeviceConfig's, then LocalBackend's."""
    attrs.resolve_types(DeviceConfig)
    attrs.resolve_types(LocalBackend)
    config: list[attrs.Attribute[Any]] = list(attrs.fields(DeviceConfig))
    own: list[attrs.Attribute[Any]] = [a for a in attrs.fields(LocalBackend) if a.name not in _NOT_KEYS]
    shared = {a.name for a in own} & {a.name for a in config}
    assert not shared, f"LocalBackend and DeviceConfig both have fields {sorted(shared)}"
    keys = {a.name: _copy(a) for a in config + own}
    return attrs.make_class("BackendTable", keys, frozen=True)


_BackendTable: Final = _table_class()
_CONFIG_KEYS: Final = tuple(a.name for a in attrs.fields(DeviceConfig))


def structure_backends(tables: object, _type: object = None) -> tuple[LocalBackend, ...]:
    """The `LocalBackend` of each ``[backends.<name>]`` table, in the file's order.

    A structure hook (``qmux._config``): its errors are cattrs' own, tagged with the backend's
    name, so that a file that holds other tables too (``qmux serve``'s) reports them in place.
    """
    if not isinstance(tables, Mapping):
        raise TableError(f"must hold one [backends.<name>] table per backend, not be {toml_type(tables)}")
    backends: list[LocalBackend] = []
    errors: list[Exception] = []
    for name, table in tables.items():
        try:
            keys = attrs.asdict(converter.structure(table, _BackendTable), recurse=False)
            config = DeviceConfig(**{key: keys.pop(key) for key in _CONFIG_KEYS})
            backends.append(LocalBackend(name, config, **keys))
        except Exception as exc:  # collected, as cattrs does, so that every mistake is reported
            exc.add_note(IterableValidationNote(f"Structuring backend {name!r}", name, _BackendTable))
            errors.append(exc)
    if errors:
        raise IterableValidationError("While structuring backends", errors, tuple)
    return tuple(backends)


@frozen
class _BackendsFile:
    """A backends file: ``[backends.<name>]`` tables and nothing else."""

    #: missing or empty, the same mistake: a file that serves nothing
    backends: tuple[LocalBackend, ...] = field(default=(), validator=at_least_one("[backends.<name>] table"))


register_table(_BackendsFile, hooks={"backends": structure_backends})


def load_backends(path: str | os.PathLike[str]) -> list[LocalBackend]:
    """The `LocalBackend`s a TOML file describes, in the file's order (schema in the module docstring)."""
    return backends_from_mapping(read_toml(path, what="backends file"), source=os.fspath(path))


def backends_from_mapping(document: Mapping[str, Any], *, source: str = "<config>") -> list[LocalBackend]:
    """The `LocalBackend`s of an already parsed document; `source` names it in errors."""
    return list(structure(document, _BackendsFile, source=source).backends)
