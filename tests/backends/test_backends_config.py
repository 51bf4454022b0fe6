"""Backends described in a TOML file: `qmux.backends.load_backends` (SPEC S1, S4, S5, S6 read its values)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing
from qiskit import QuantumCircuit

import qmux
from qmux.backends import LocalBackend, load_backends

FULL = """
[backends.lab_qpu]
num_qubits = 5
simulator = false
operational = true
max_ttl = "2h"
interactive_ttl = 3
concurrency = 1
job_seconds = 0.25
seed = 42
max_simulated_qubits = 5

[backends.lab_sim]
simulator = true
concurrency = 4

[backends.lab_down]
operational = false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "backends.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_s4_s5_every_key_of_the_schema_is_read(tmp_path: Path) -> None:
    qpu, sim, down = load_backends(write(tmp_path, FULL))
    assert isinstance(qpu, LocalBackend) and qpu.name == "lab_qpu"
    assert qpu.config == qmux.BackendConfig(
        num_qubits=5, simulator=False, operational=True, max_ttl=7200.0, interactive_ttl=3.0, concurrency=1
    )
    assert (qpu.job_seconds, qpu.seed, qpu.max_simulated_qubits) == (0.25, 42, 5)
    assert sim.name == "lab_sim" and sim.config.simulator and sim.config.concurrency == 4
    assert sim.config == qmux.BackendConfig(simulator=True, concurrency=4)  # the rest: defaults
    assert (sim.job_seconds, sim.seed) == (0.0, None)
    assert not down.config.operational


async def test_s1_s6_a_service_serves_the_files_backends(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    bell.measure_all()
    async with qmux.open_service(load_backends(write(tmp_path, FULL))) as service:
        assert service.least_busy(operational=True, simulator=False).name == "lab_qpu"
        with pytest.raises(qmux.BackendUnavailableError):
            qmux.Session(service=service, backend="lab_down")
        with pytest.raises(qmux.InvalidInputError, match=r"max_ttl of backend .* \(7200s\)"):
            qmux.Session(service=service, backend="lab_qpu", max_time="3h")
        async with qmux.Session(service=service, backend="lab_qpu") as session:
            start = trio.current_time()
            result = await (await qmux.Sampler().run([bell], shots=100)).result()
            assert trio.current_time() - start == pytest.approx(0.25)
            assert (await session.details())["interactive_timeout"] == 3.0
        assert sum(result[0].data.meas.get_counts().values()) == 100


MISTAKES = [
    ("unknown key", "[backends.a]\nqubits = 5\n", "backend 'a': unknown key 'qubits'; allowed keys: num_qubits,"),
    ("text for a number", '[backends.a]\nnum_qubits = "five"\n', "backend 'a': num_qubits = 'five' must be a positive"),
    ("bool for a number", "[backends.a]\nconcurrency = true\n", "concurrency = True must be a positive whole number"),
    ("zero qubits", "[backends.a]\nnum_qubits = 0\n", "num_qubits = 0 must be a positive whole number"),
    ("number for a flag", "[backends.a]\nsimulator = 1\n", "simulator = 1 must be true or false"),
    ("negative job time", "[backends.a]\njob_seconds = -1\n", r"job_seconds = -1 must be a number of seconds >= 0"),
    (
        "bad duration",
        '[backends.a]\nmax_ttl = "5 minutes"\n',
        "max_ttl = '5 minutes' must be a positive number of seconds or a string such as '90s'",
    ),
    (
        "zero duration",
        "[backends.a]\ninteractive_ttl = 0\n",
        "interactive_ttl = 0 must be a positive number of seconds",
    ),
    ("negative seed", "[backends.a]\nseed = -2\n", "seed = -2 must be a whole number >= 0"),
    ("backend not a table", "backends = { a = 5 }\n", r"backend 'a' must be a table \(\[backends.a\]\)"),
    ("no backends", "# nothing here\n", r"no backends; describe each one in a \[backends.<name>\] table"),
    ("unknown top-level key", "[devices.a]\n", "unknown top-level key 'devices'"),
    ("not TOML", "[backends.a\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_s1_a_bad_file_names_the_key_and_what_is_allowed(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(qmux.InvalidInputError, match=message) as error:
        load_backends(path)
    assert str(path) in str(error.value)


def test_s1_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(qmux.InvalidInputError, match="no backends file at"):
        load_backends(tmp_path / "absent.toml")


def test_the_example_file_loads() -> None:
    path = Path(__file__).resolve().parents[2] / "examples" / "backends.toml"
    assert [backend.name for backend in load_backends(path)] == ["lab_qpu", "lab_simulator"]
