"""Backends described in a TOML file (`qmux.backends.load_backends`): every key takes effect.

Each key of a ``[backends.<name>]`` table has a test below that the service behaves as the key
says (not only that it parses), on the virtual clock; `KEY_TESTS` maps each key to its test,
and a test checks that the map covers every key the file takes, so that a key added to
`qmux.BackendConfig` or `LocalBackend` needs its own test here. Then: mistakes, and how they
are reported (SPEC S1, S4, S5, S6, S8, S10 read these values).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from qiskit import QuantumCircuit

import qmux
from qmux.backends import LocalBackend, load_backends
from qmux.backends._device import DeviceConfig
from qmux.journal import MemoryStore

from ..ibm import test_ibm_device_and_jobs as ibm_device  # the device keys IBM's API shows

Clock = trio.testing.MockClock


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "backends.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> list[LocalBackend]:
    return load_backends(write(tmp_path, text))


def bell(width: int = 2) -> QuantumCircuit:
    circuit = QuantumCircuit(width)
    circuit.h(0)
    for qubit in range(1, width):
        circuit.cx(0, qubit)
    circuit.measure_all()
    return circuit


async def counts(mode: Any, circuit: QuantumCircuit, shots: int = 200) -> dict[str, int]:
    job = await qmux.Sampler(mode=mode).run([circuit], shots=shots)
    found: dict[str, int] = (await job.result())[0].data.meas.get_counts()
    return found


FULL = """
[backends.lab_qpu]
num_qubits = 5
simulator = false
operational = true
max_ttl = "2h"
interactive_ttl = 3
concurrency = 1
idempotent = true
job_timeout = "1h30m"
job_seconds = 0.25
seed = 42
max_simulated_qubits = 5
coupling_map = "line"
fractional_gates = false
mock = true

[backends.lab_sim]
simulator = true
concurrency = 4

[backends.lab_down]
operational = false
"""


def test_every_key_of_a_table_is_read_and_the_rest_take_their_defaults(tmp_path: Path) -> None:
    qpu, sim, down = load(tmp_path, FULL)
    assert isinstance(qpu, LocalBackend) and qpu.name == "lab_qpu"
    assert qpu.config == DeviceConfig(
        num_qubits=5,
        simulator=False,
        operational=True,
        max_ttl=7200.0,
        interactive_ttl=3.0,
        concurrency=1,
        idempotent=True,
        job_timeout=5400.0,
        coupling_map="line",
        fractional_gates=False,
        mock=True,
    )
    assert (qpu.job_seconds, qpu.seed, qpu.max_simulated_qubits) == (0.25, 42, 5)
    assert sim.name == "lab_sim" and sim.config == DeviceConfig(simulator=True, concurrency=4)
    plain = LocalBackend("plain")
    assert (sim.job_seconds, sim.seed, sim.max_simulated_qubits) == (plain.job_seconds, None, 20)
    assert not down.config.operational


# -- each key takes effect --------------------------------------------------------------------


async def test_num_qubits_fails_a_wider_circuits_job_alone(tmp_path: Path, autojump_clock: Clock) -> None:
    async with qmux.open_service(load(tmp_path, "[backends.lab]\nnum_qubits = 2\n")) as service:
        lab = service.backend("lab")
        assert lab.num_qubits == 2
        wide = await qmux.Sampler(mode=lab).run([bell(3)])
        with pytest.raises(qmux.JobFailedError) as failed:
            await wide.result()
        assert "its circuit has 3 qubits but backend 'lab' has 2" in str(failed.value.__cause__)
        assert sum((await counts(lab, bell(2))).values()) == 200
        with pytest.raises(qmux.BackendUnavailableError):
            service.least_busy(min_num_qubits=3)


async def test_simulator_is_what_least_busy_filters_on(tmp_path: Path, autojump_clock: Clock) -> None:
    text = "[backends.qpu]\nsimulator = false\n[backends.sim]\nsimulator = true\n"
    async with qmux.open_service(load(tmp_path, text)) as service:
        assert service.least_busy(simulator=True).name == "sim"
        assert service.least_busy(simulator=False).name == "qpu"
        assert service.backend("sim").simulator and not service.backend("qpu").simulator


async def test_operational_false_refuses_sessions(tmp_path: Path, autojump_clock: Clock) -> None:
    text = "[backends.up]\n[backends.down]\noperational = false\n"
    async with qmux.open_service(load(tmp_path, text)) as service:
        with pytest.raises(qmux.BackendUnavailableError, match="'down' is not operational"):
            qmux.Session(service=service, backend="down")
        assert service.least_busy(operational=False).name == "down"
        assert service.least_busy(operational=True).name == "up"


@pytest.mark.parametrize(("written", "seconds"), [('"2h"', 7200), ("90", 90), ('"1h30m"', 5400)])
async def test_max_ttl_is_the_default_and_the_bound_of_max_time(
    tmp_path: Path, autojump_clock: Clock, written: str, seconds: float
) -> None:
    async with qmux.open_service(load(tmp_path, f"[backends.lab]\nmax_ttl = {written}\n")) as service:
        with pytest.raises(qmux.InvalidInputError, match=rf"above the max_ttl of backend 'lab' \({seconds}s\)"):
            qmux.Session(service=service, backend="lab", max_time=seconds + 1)
        session = qmux.Session(service=service, backend="lab")  # no max_time: the backend's max_ttl
        await (await session.run("echo", "x")).result()
        await trio.sleep(seconds - 1)
        assert await session.status() != "Closed"
        await trio.sleep(1)
        details = await session.details()
        assert (details["max_time"], details["state"], details["closed_reason"]) == (seconds, "closed", "max_time")


async def test_interactive_ttl_deactivates_an_idle_session(tmp_path: Path, autojump_clock: Clock) -> None:
    async with qmux.open_service(load(tmp_path, '[backends.lab]\ninteractive_ttl = "3s"\n')) as service:
        session = qmux.Session(service=service, backend="lab")
        await (await session.run("echo", "x")).result()
        await trio.sleep(2.9)
        assert (await session.details())["state"] == "active"
        await trio.sleep(0.2)
        assert (await session.details())["state"] == "inactive"
        await session.close()


@pytest.mark.parametrize("concurrency", [1, 2, 4])
async def test_concurrency_is_how_many_jobs_run_at_once(
    tmp_path: Path, autojump_clock: Clock, concurrency: int
) -> None:
    text = f"[backends.lab]\nconcurrency = {concurrency}\njob_seconds = 1\n"
    async with qmux.open_service(load(tmp_path, text)) as service:
        jobs = [await service.backend("lab").run("echo", n) for n in range(4)]
        assert [await job.result() for job in jobs] == [0, 1, 2, 3]
        assert trio.current_time() == pytest.approx(4 / concurrency)


@pytest.mark.parametrize(("written", "seconds"), [("0.25", 0.25), ('"2s"', 2.0), ("0", 0.0)])
async def test_job_seconds_is_the_device_time_of_each_job(
    tmp_path: Path, autojump_clock: Clock, written: str, seconds: float
) -> None:
    async with qmux.open_service(load(tmp_path, f"[backends.lab]\njob_seconds = {written}\n")) as service:
        job = await service.backend("lab").run("echo", "x")
        assert await job.result() == "x"
        assert trio.current_time() == pytest.approx(seconds)


async def test_seed_makes_results_reproducible(tmp_path: Path, autojump_clock: Clock) -> None:
    text = "[backends.seeded]\nseed = 1234\n[backends.again]\nseed = 1234\n[backends.other]\nseed = 99\n"
    async with qmux.open_service(load(tmp_path, text)) as service:
        seeded = [await counts(service.backend(name), bell(3)) for name in ("seeded", "seeded", "again", "other")]
    assert seeded[0] == seeded[1] == seeded[2]  # same seed, same inputs: the same counts, on any backend
    assert seeded[3] != seeded[0]


async def test_max_simulated_qubits_bounds_the_simulation_not_the_device(tmp_path: Path, autojump_clock: Clock) -> None:
    text = "[backends.lab]\nnum_qubits = 10\nmax_simulated_qubits = 3\n"
    async with qmux.open_service(load(tmp_path, text)) as service:
        lab = service.backend("lab")
        assert sum((await counts(lab, bell(3))).values()) == 200
        wide = await qmux.Sampler(mode=lab).run([bell(4)])
        with pytest.raises(qmux.JobFailedError) as failed:
            await wide.result()
        assert "simulates a statevector of at most 3 qubits" in str(failed.value.__cause__)


async def test_job_timeout_stops_a_job_that_runs_too_long(tmp_path: Path, autojump_clock: Clock) -> None:
    text = '[backends.hangs]\njob_seconds = 3600\njob_timeout = "10s"\n[backends.waits]\njob_seconds = 3600\n'
    async with qmux.open_service(load(tmp_path, text)) as service:
        stopped = await service.backend("hangs").run("echo", "never")
        patient = await service.backend("waits").run("echo", "at last")
        with pytest.raises(qmux.JobFailedError, match="job_timeout of 10s") as failed:
            await stopped.result()
        assert failed.value.reason == "job_timeout" and trio.current_time() == pytest.approx(10)
        assert await patient.result() == "at last"  # no job_timeout: no limit
        assert trio.current_time() == pytest.approx(3600)


def _crash_copy(store: MemoryStore) -> MemoryStore:
    """What a crash at this instant leaves behind: exactly what the store holds now."""
    left = MemoryStore()
    left.sessions, left.jobs = dict(store.sessions), dict(store.jobs)
    return left


@pytest.mark.parametrize("idempotent", [True, False])
async def test_idempotent_reruns_a_job_a_restart_interrupted(
    tmp_path: Path, autojump_clock: Clock, idempotent: bool
) -> None:
    path = write(tmp_path, f"[backends.lab]\njob_seconds = 50\nidempotent = {str(idempotent).lower()}\n")
    store = MemoryStore()
    async with qmux.open_service(path, journal=store) as service:
        running = await service.backend("lab").run("echo", "ran again")
        await trio.sleep(10)
        left = _crash_copy(store)  # the process dies with the job half done
        await running.cancel()
    async with qmux.open_service(path, journal=left) as service:
        recovered = await service.job(running.job_id)
        if idempotent:
            assert await recovered.result() == "ran again"
        else:
            with pytest.raises(qmux.JobFailedError) as failed:
                await recovered.result()
            assert failed.value.reason == "interrupted_by_restart"


#: the test that shows each key taking effect
async def test_retries_and_retry_backoff_rerun_transient_failures(tmp_path: Path, autojump_clock: Clock) -> None:
    text = '[backends.patient]\nretries = 2\nretry_backoff = "5s"\n[backends.strict]\n'
    runs: dict[str, int] = {}

    def busy_twice(request: qmux.JobRequest) -> object:
        runs[request.job_id] = runs.get(request.job_id, 0) + 1
        if runs[request.job_id] <= 2:
            raise qmux.TransientBackendError("device busy")
        return "done"

    backends = load(tmp_path, text)
    for backend in backends:
        backend.programs = {"busy": busy_twice}
    async with qmux.open_service(backends) as service:
        patient = await service.backend("patient").run("busy", None)
        assert await patient.result() == "done"
        assert trio.current_time() == pytest.approx(5 + 10), "waits retry_backoff, then twice as long (R1)"
        assert (await patient.metrics())["attempts"] == 3
        strict = await service.backend("strict").run("busy", None)
        with pytest.raises(qmux.JobFailedError, match="device busy"):
            await strict.result()  # retries default to 0
        assert (await strict.metrics())["attempts"] == 1


async def test_coupling_map_is_honoured_by_the_simulation_as_on_a_device(tmp_path: Path, autojump_clock: Clock) -> None:
    table = '[backends.lab]\nnum_qubits = 3\ncoupling_map = "line"\n'
    async with qmux.open_service(load(tmp_path, table)) as service:
        backend = service.backend("lab")
        assert (await counts(backend, bell(2))).keys() <= {"00", "11"}  # 0-1 is coupled
        far = QuantumCircuit(3)
        far.h(0)
        far.cx(0, 2)
        far.measure_all()
        with pytest.raises(qmux.JobFailedError, match=r"applies cx to qubits \(0, 2\), which are not coupled"):
            await counts(backend, far)
        wide = QuantumCircuit(3)  # as wide as the device, qubit 2 idle: left out of the simulation
        wide.h(0)
        wide.cx(0, 1)
        wide.measure_all()
        assert set(await counts(backend, wide)) <= {"000", "011"}


KEY_TESTS = {
    "num_qubits": test_num_qubits_fails_a_wider_circuits_job_alone,
    "simulator": test_simulator_is_what_least_busy_filters_on,
    "operational": test_operational_false_refuses_sessions,
    "max_ttl": test_max_ttl_is_the_default_and_the_bound_of_max_time,
    "interactive_ttl": test_interactive_ttl_deactivates_an_idle_session,
    "concurrency": test_concurrency_is_how_many_jobs_run_at_once,
    "job_seconds": test_job_seconds_is_the_device_time_of_each_job,
    "seed": test_seed_makes_results_reproducible,
    "max_simulated_qubits": test_max_simulated_qubits_bounds_the_simulation_not_the_device,
    "job_timeout": test_job_timeout_stops_a_job_that_runs_too_long,
    "idempotent": test_idempotent_reruns_a_job_a_restart_interrupted,
    "retries": test_retries_and_retry_backoff_rerun_transient_failures,
    "retry_backoff": test_retries_and_retry_backoff_rerun_transient_failures,
    "coupling_map": test_coupling_map_is_honoured_by_the_simulation_as_on_a_device,
    "fractional_gates": ibm_device.test_fractional_gates_are_listed_only_by_devices_that_offer_them,
    "mock": ibm_device.test_mock_devices_are_marked_and_their_jobs_listed_only_on_request,
}


def allowed_keys(tmp_path: Path) -> list[str]:
    """The keys a backend table takes, as the error for an unknown key lists them."""
    with pytest.raises(qmux.InvalidInputError) as refused:
        load(tmp_path, "[backends.a]\nno_such_key = 1\n")
    found = re.search(r"allowed keys: (.*)$", str(refused.value))
    assert found is not None
    return found.group(1).split(", ")


def test_every_key_a_table_takes_has_a_test_that_it_takes_effect(tmp_path: Path) -> None:
    assert sorted(allowed_keys(tmp_path)) == sorted(KEY_TESTS)


def test_the_readme_documents_every_key() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### The embedded backends", 1)[1].split("\n### ", 1)[0]
    block = section.split("```toml\n", 1)[1].split("```", 1)[0]
    documented = re.findall(r"^(\w+) =", block, flags=re.MULTILINE)
    assert sorted(documented) == sorted(KEY_TESTS)


# -- mistakes ---------------------------------------------------------------------------------

MISTAKES = [
    (
        "unknown key",
        "[backends.a]\nqubits = 5\n",
        "[backends.a] unknown key 'qubits'; allowed keys: num_qubits, operational, simulator, max_ttl,",
    ),
    ("text for a number", '[backends.a]\nnum_qubits = "five"\n', "[backends.a] num_qubits='five' must be a positive"),
    ("a number is not coerced", '[backends.a]\nconcurrency = "2"\n', "concurrency='2' must be a positive whole"),
    ("bool for a number", "[backends.a]\nconcurrency = true\n", "concurrency=True must be a positive whole number"),
    ("float for a count", "[backends.a]\nnum_qubits = 5.0\n", "num_qubits=5.0 must be a positive whole number"),
    ("zero qubits", "[backends.a]\nnum_qubits = 0\n", "[backends.a] num_qubits=0 must be a positive whole number"),
    ("number for a flag", "[backends.a]\nsimulator = 1\n", "simulator=1 must be True or False"),
    ("text for a flag", '[backends.a]\nidempotent = "yes"\n', "idempotent='yes' must be True or False"),
    ("negative job time", "[backends.a]\njob_seconds = -1\n", "job_seconds=-1 must be a finite number of seconds, 0"),
    ("bad duration", '[backends.a]\nmax_ttl = "5 minutes"\n', "max_ttl='5 minutes' is not a duration; use a positive"),
    ("zero duration", "[backends.a]\ninteractive_ttl = 0\n", "interactive_ttl=0 must be a positive, finite number"),
    ("zero timeout", '[backends.a]\njob_timeout = "0s"\n', "job_timeout='0s' must be positive and finite"),
    ("negative seed", "[backends.a]\nseed = -2\n", "[backends.a] seed=-2 must be a whole number, 0 or more"),
    ("backend not a table", "backends = { a = 5 }\n", "[backends.a] must be a table, not an integer"),
    ("backends not tables", "backends = [1]\n", "[backends] must hold one [backends.<name>] table per backend"),
    ("quoted name", '[backends."lab qpu"]\nseed = -1\n', '[backends."lab qpu"] seed=-1'),
    ("no backends", "# nothing here\n", "no backends: give at least one [backends.<name>] table"),
    ("an empty table of backends", "[backends]\n", "no backends: give at least one [backends.<name>] table"),
    ("unknown top-level key", "[devices.a]\n", "unknown top-level key 'devices'; allowed keys: backends"),
    ("not TOML", "[backends.a\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_s1_a_bad_file_names_the_table_the_key_and_what_is_allowed(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(qmux.InvalidInputError) as error:
        load_backends(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


def test_every_mistake_of_a_file_is_listed_at_once(tmp_path: Path) -> None:
    text = '[backends.a]\nnum_qubits = 0\nmax_ttl = "soon"\ncolour = "red"\n[backends.b]\nseed = 1.5\n[backends.c]\n'
    path = write(tmp_path, text)
    with pytest.raises(qmux.InvalidInputError) as error:
        load_backends(path)
    assert str(error.value).splitlines() == [
        f"{path}: 4 mistakes:",
        "  - [backends.a] num_qubits=0 must be a positive whole number",
        "  - [backends.a] max_ttl='soon' is not a duration; use a positive number of seconds or a string such as "
        "'90s', '25m', '2h' or '1h30m'",
        "  - [backends.a] unknown key 'colour'; allowed keys: num_qubits, operational, simulator, max_ttl, "
        "interactive_ttl, concurrency, idempotent, job_timeout, retries, retry_backoff, coupling_map, "
        "fractional_gates, mock, job_seconds, seed, "
        "max_simulated_qubits",
        "  - [backends.b] seed=1.5 must be a whole number, 0 or more",
    ]


def test_s1_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(qmux.InvalidInputError, match="no backends file at"):
        load_backends(tmp_path / "absent.toml")
    with pytest.raises(qmux.InvalidInputError, match="cannot read the backends file"):
        load_backends(tmp_path)


async def test_open_service_takes_the_files_path(tmp_path: Path, autojump_clock: Clock) -> None:
    async with qmux.open_service(write(tmp_path, "[backends.lab]\nnum_qubits = 3\n")) as service:
        assert [(b.name, b.num_qubits) for b in service.backends()] == [("lab", 3)]
    with pytest.raises(qmux.InvalidInputError, match="num_qubits=-3"):
        async with qmux.open_service(write(tmp_path, "[backends.lab]\nnum_qubits = -3\n")):
            pass  # pragma: no cover


def test_the_example_file_loads() -> None:
    path = Path(__file__).resolve().parents[2] / "examples" / "backends.toml"
    assert [backend.name for backend in load_backends(path)] == ["lab_qpu", "lab_simulator"]
