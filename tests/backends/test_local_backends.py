"""The embedded simulated devices: device time, real simulation, seeds, width checks (SPEC P1, P2, J2, J3, S6)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing
from qiskit import QuantumCircuit

import qmux
from qmux.backends import LocalBackend, default_backends


def bell(measure: bool = True) -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    if measure:
        circuit.measure_all()
    return circuit


def device(name: str = "qpu", num_qubits: int = 5, **kwargs: Any) -> LocalBackend:
    return LocalBackend(name, qmux.BackendConfig(num_qubits=num_qubits), **kwargs)


@pytest.fixture
def thread_calls(monkeypatch: pytest.MonkeyPatch) -> list[Callable[..., Any]]:
    """Records each simulation handed to a worker thread."""
    calls: list[Callable[..., Any]] = []
    run_sync = trio.to_thread.run_sync

    async def spy(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        calls.append(fn)
        return await run_sync(fn, *args, **kwargs)

    monkeypatch.setattr(trio.to_thread, "run_sync", spy)
    return calls


# -- the default set -----------------------------------------------------------------------------


def test_s6_default_backends_look_like_devices_users_know() -> None:
    backends = default_backends()
    names = [b.name for b in backends]
    assert len(set(names)) == len(names)
    qpus = [b for b in backends if not b.config.simulator]
    simulators = [b for b in backends if b.config.simulator]
    assert len(qpus) >= 2 and len(simulators) == 1
    assert all(b.config.num_qubits >= 127 and b.config.concurrency == 1 for b in qpus)
    assert all(b.config.max_ttl == 8 * 3600 and b.job_seconds > 0 for b in backends)
    assert all(0 < b.config.interactive_ttl <= 60 for b in backends)


async def test_p1_p2_every_default_backend_runs_both_primitives(autojump_clock: trio.testing.MockClock) -> None:
    async with qmux.open_service() as service:
        assert not service.least_busy(operational=True, simulator=False).simulator
        for backend in service.backends():
            counts = await (await qmux.Sampler(mode=backend).run([bell()], shots=100)).result()
            evs = await (await qmux.Estimator(mode=backend).run([(bell(False), "ZZ")], precision=0.0)).result()
            assert sum(counts[0].data.meas.get_counts().values()) == 100
            assert float(evs[0].data.evs) == pytest.approx(1.0)


# -- device time ---------------------------------------------------------------------------------


async def test_p1_a_job_takes_its_device_time_on_trios_clock(autojump_clock: trio.testing.MockClock) -> None:
    async with qmux.open_service([device(job_seconds=2.5)]) as service:
        start = trio.current_time()
        jobs = [await qmux.Sampler(mode=service.backend("qpu")).run([bell()], shots=10) for _ in range(2)]
        await jobs[0].result()
        assert trio.current_time() - start == pytest.approx(2.5)
        await jobs[1].result()
        assert trio.current_time() - start == pytest.approx(5.0)  # concurrency 1: one after the other


async def test_j3_a_job_the_device_cannot_run_fails_before_taking_device_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wide = QuantumCircuit(6)
    wide.measure_all()
    async with qmux.open_service([device(job_seconds=2.5)]) as service:
        start = trio.current_time()
        job = await qmux.Sampler(mode=service.backend("qpu")).run([wide])
        with pytest.raises(qmux.JobFailedError, match="its circuit has 6 qubits but backend 'qpu' has 5"):
            await job.result()
        assert trio.current_time() == start


async def test_j2_cancelling_a_running_primitive_job_stops_it(autojump_clock: trio.testing.MockClock) -> None:
    async with qmux.open_service([device(job_seconds=10.0)]) as service:
        job = await qmux.Sampler(mode=service.backend("qpu")).run([bell()])
        await trio.sleep(1.0)
        assert await job.status() == "RUNNING"
        await job.cancel()
        with pytest.raises(qmux.JobCancelledError):
            await job.result()
        assert trio.current_time() < 10.0


# -- simulation ----------------------------------------------------------------------------------


async def test_p1_the_statevector_limit_is_a_clear_per_job_error() -> None:
    circuit = QuantumCircuit(4)
    circuit.measure_all()
    async with qmux.open_service([device(num_qubits=127, max_simulated_qubits=3)]) as service:
        job = await qmux.Sampler(mode=service.backend("qpu")).run([circuit])
        with pytest.raises(qmux.JobFailedError, match="simulates a statevector of at most 3 qubits"):
            await job.result()


async def test_p1_what_the_simulator_cannot_do_fails_the_job_with_its_reason() -> None:
    circuit = QuantumCircuit(1, 2)
    circuit.h(0)
    circuit.measure(0, 0)
    circuit.x(0)
    circuit.measure(0, 1)  # a mid-circuit measurement: fine on a QPU, not on a statevector
    async with qmux.open_service([device()]) as service:
        job = await qmux.Sampler(mode=service.backend("qpu")).run([circuit])
        with pytest.raises(qmux.JobFailedError, match=r"cannot run this job: .*mid-circuit measurements"):
            await job.result()


async def test_p1_cheap_simulations_run_inline_and_costly_ones_on_a_thread(
    thread_calls: list[Callable[..., Any]],
) -> None:
    """Inline keeps virtual-clock tests exact; a thread keeps the event loop free for big jobs."""
    async with qmux.open_service([device("inline"), device("threaded", inline_seconds=0.0)]) as service:
        for name in ("inline", "threaded"):
            job = await qmux.Sampler(mode=service.backend(name)).run([bell()], shots=64)
            counts = (await job.result())[0].data.meas.get_counts()
            assert set(counts) <= {"00", "11"} and sum(counts.values()) == 64
    assert len(thread_calls) == 1


# -- seeds ---------------------------------------------------------------------------------------


def _uniform(num_qubits: int = 3) -> QuantumCircuit:
    circuit = QuantumCircuit(num_qubits)
    circuit.h(range(num_qubits))
    circuit.measure_all()
    return circuit


async def _bitstrings(backend: qmux.BackendHandle, seed: int | None = None) -> list[str]:
    job = await qmux.Sampler(mode=backend, seed=seed).run([_uniform()], shots=256)
    result = await job.result()
    bitstrings: list[str] = result[0].data.meas.get_bitstrings()
    return bitstrings


async def test_p1_a_seeded_backend_gives_the_same_samples_for_the_same_job() -> None:
    async with qmux.open_service([device("seeded", seed=11), device("free")]) as service:
        seeded, free = service.backend("seeded"), service.backend("free")
        assert await _bitstrings(seeded) == await _bitstrings(seeded)
        # 256 shots of 3 fair bits: two unseeded runs agree with probability 2**-768
        assert await _bitstrings(free) != await _bitstrings(free)
        # a job's own seed wins over the backend's, and reproduces anywhere
        assert await _bitstrings(seeded, seed=5) == await _bitstrings(free, seed=5) != await _bitstrings(seeded)


async def test_p2_a_seed_fixes_the_estimators_noise() -> None:
    async with qmux.open_service([device(seed=3)]) as service:
        estimator = qmux.Estimator(mode=service.backend("qpu"))
        first, second = [float((await (await estimator.run([(bell(False), "ZZ")])).result())[0].data.evs) for _ in "ab"]
    assert first == second != 1.0


async def test_p2_an_observable_that_vanishes_on_the_idle_qubits_estimates_zero() -> None:
    """A circuit as wide as the device (as transpiled) with X on a qubit it leaves in |0>: the value is 0.

    Such an observable reduces to nothing on the qubits in use; it must still be estimated (0,
    within the precision), beside observables that do not vanish, not fail the job.
    """
    wide = QuantumCircuit(5)
    wide.compose(bell(False), [0, 1], inplace=True)
    vanishing = ["XXXXX", {"IIXZZ": 1.0, "IIXII": -0.5}]
    partly = {"IIXZZ": 1.0, "IIIZZ": 0.5}  # only its first term vanishes
    async with qmux.open_service([device(seed=3)]) as service:
        estimator = qmux.Estimator(mode=service.backend("qpu"))
        exact = (await (await estimator.run([(wide, [*vanishing, partly, "IIIZZ"])], precision=0.0)).result())[0]
        noisy = (await (await estimator.run([(wide, "XXXXX")], precision=0.01)).result())[0]
    assert exact.data.evs.tolist() == pytest.approx([0.0, 0.0, 0.5, 1.0])
    assert exact.data.stds.tolist() == [0.0] * 4
    assert float(noisy.data.evs) != 0.0 and abs(float(noisy.data.evs)) < 0.05  # 0 within five sigmas
    assert float(noisy.data.stds) == 0.01


# -- programs --------------------------------------------------------------------------------------


async def test_s11_custom_programs_run_beside_the_primitives() -> None:
    def shout(request: qmux.JobRequest) -> object:
        return str(request.inputs).upper()

    backend = device(programs={"shout": shout, "sampler": lambda request: "stub"})
    async with qmux.open_service([backend]) as service, qmux.Session(service=service, backend="qpu") as session:
        assert await (await session.run("shout", "hi")).result() == "HI"
        assert await (await qmux.Sampler().run([bell()])).result() == "stub"  # a custom program wins
        assert float(
            (await (await qmux.Estimator().run([(bell(False), "ZZ")], precision=0)).result())[0].data.evs
        ) == pytest.approx(1.0)
        unknown = await session.run("qaoa", {})
        with pytest.raises(
            qmux.JobFailedError, match="no program 'qaoa'; it runs: estimator, executor, sampler, shout"
        ):
            await unknown.result()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": -1}, "seed=-1"),
        ({"max_simulated_qubits": 0}, "max_simulated_qubits=0"),
        ({"inline_seconds": -1}, "inline_seconds=-1"),
    ],
)
def test_local_backend_refuses_bad_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(qmux.InvalidInputError, match=message):
        device(**kwargs)
