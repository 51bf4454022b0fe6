"""Backends described in a TOML file: `load_backends`.

The schema: one table per backend under ``[backends]``, named by its key. Every field is
optional and takes the default shown::

    [backends.fake_sherbrooke]
    num_qubits = 127          # qubits the device offers; wider circuits fail their job
    simulator = false         # a simulator rather than a QPU (least_busy filters on it)
    operational = true        # false: it refuses new sessions and jobs
    max_ttl = "8h"            # longest session max_time: seconds, or "90s", "25m", "1h30m"
    interactive_ttl = "60s"   # ITTL: how long an idle active session keeps the device
    concurrency = 1           # jobs at once; 1 for a QPU
    job_seconds = 0.0         # device time per job, in seconds (a number >= 0)
    seed = 1234               # seeds every job that brings no seed: same inputs, same results
    max_simulated_qubits = 20 # widest circuit the statevector simulation takes

A mistake (unknown key, wrong type, value out of range, no backend at all) is an
`InvalidInputError` that names the file, the backend, the key and what is allowed.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs

from .._core import BackendConfig, InvalidInputError, parse_duration
from ._local import LocalBackend

__all__ = ["backends_from_mapping", "load_backends"]

_T = TypeVar("_T")


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _positive_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def _seed(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("must be a whole number >= 0")
    return value


def _duration(value: object) -> float:
    try:
        return parse_duration(value)
    except InvalidInputError:
        raise ValueError("must be a positive number of seconds or a string such as '90s', '25m' or '1h30m'") from None


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError("must be a number of seconds >= 0")
    return float(value)


#: key -> how to read it; config keys go to BackendConfig, the others to LocalBackend
_CONFIG_KEYS: Mapping[str, Callable[[object], object]] = {
    "num_qubits": _positive_int,
    "simulator": _boolean,
    "operational": _boolean,
    "max_ttl": _duration,
    "interactive_ttl": _duration,
    "concurrency": _positive_int,
    "idempotent": _boolean,
    "job_timeout": _duration,
    "retries": _seed,
    "retry_backoff": _seconds,
}
_BACKEND_KEYS: Mapping[str, Callable[[object], object]] = {
    "job_seconds": _seconds,
    "seed": _seed,
    "max_simulated_qubits": _positive_int,
}
assert set(_CONFIG_KEYS) == {f.name for f in attrs.fields(BackendConfig)}, "the schema must cover BackendConfig"


def load_backends(path: str | os.PathLike[str]) -> list[LocalBackend]:
    """The `LocalBackend`s a TOML file describes, in the file's order (schema in the module docstring)."""
    try:
        with open(path, "rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        raise InvalidInputError(f"no backends file at {os.fspath(path)!r}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"{os.fspath(path)}: not valid TOML: {exc}") from exc
    return backends_from_mapping(document, source=os.fspath(path))


def backends_from_mapping(document: Mapping[str, Any], *, source: str = "<config>") -> list[LocalBackend]:
    """The `LocalBackend`s of an already parsed document; `source` names it in errors."""
    unknown = set(document) - {"backends"}
    if unknown:
        raise InvalidInputError(
            f"{source}: unknown top-level key {sorted(unknown)[0]!r}; the file holds [backends.<name>] tables"
        )
    tables = document.get("backends")
    if not isinstance(tables, Mapping) or not tables:
        raise InvalidInputError(f"{source}: no backends; describe each one in a [backends.<name>] table")
    return [_backend(name, table, source) for name, table in tables.items()]


def _backend(name: str, table: object, source: str) -> LocalBackend:
    where = f"{source}: backend {name!r}"
    if not isinstance(table, Mapping):
        raise InvalidInputError(f"{where} must be a table ([backends.{name}]), not a {type(table).__name__}")
    for key in table:
        if key not in _CONFIG_KEYS and key not in _BACKEND_KEYS:
            allowed = ", ".join([*_CONFIG_KEYS, *_BACKEND_KEYS])
            raise InvalidInputError(f"{where}: unknown key {key!r}; allowed keys: {allowed}")

    def read(key: str, reader: Callable[[object], _T], default: _T) -> _T:
        if key not in table:
            return default
        try:
            return reader(table[key])
        except ValueError as exc:
            raise InvalidInputError(f"{where}: {key} = {table[key]!r} {exc}") from None

    base = BackendConfig()
    config = BackendConfig(
        num_qubits=read("num_qubits", _positive_int, base.num_qubits),
        operational=read("operational", _boolean, base.operational),
        simulator=read("simulator", _boolean, base.simulator),
        max_ttl=read("max_ttl", _duration, base.max_ttl),
        interactive_ttl=read("interactive_ttl", _duration, base.interactive_ttl),
        concurrency=read("concurrency", _positive_int, base.concurrency),
    )
    plain = LocalBackend(name, config)
    return LocalBackend(
        name,
        config,
        job_seconds=read("job_seconds", _seconds, plain.job_seconds),
        seed=read("seed", _seed, plain.seed),
        max_simulated_qubits=read("max_simulated_qubits", _positive_int, plain.max_simulated_qubits),
    )
