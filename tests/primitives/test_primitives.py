"""Sampler and Estimator on real circuits, in sessions and in job mode (SPEC P1, P2, P3, S11).

These run against `service_factory`, so each front door that registers itself there runs them
too. The backends take no device time, so no clock is involved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import PrimitiveResult, StatevectorEstimator, StatevectorSampler
from qiskit.quantum_info import SparsePauliOp

import qmux
from qmux.backends import LocalBackend
from qmux.testing import ServiceFactory

SEED = 1234


def bell(measure: bool = True) -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    if measure:
        circuit.measure_all()
    return circuit


def device(name: str = "qpu", num_qubits: int = 5, **kwargs: Any) -> LocalBackend:
    """A seeded 5-qubit device with no device time: results are fixed, no clock is needed."""
    kwargs.setdefault("seed", SEED)
    return LocalBackend(name, qmux.BackendConfig(num_qubits=num_qubits), **kwargs)


@pytest.fixture
async def service(service_factory: ServiceFactory) -> AsyncIterator[Any]:
    async with service_factory([device("qpu"), device("other")]) as service:
        yield service


# -- P1: the sampler -----------------------------------------------------------------------------


async def test_p1_bell_counts_split_evenly_and_sum_to_shots(service: Any) -> None:
    async with qmux.Session(service=service, backend="qpu") as session:
        job = await qmux.Sampler(mode=session).run([(bell(),)], shots=1024)
        result = await job.result()
    assert isinstance(result, PrimitiveResult)
    counts = result[0].data.meas.get_counts()
    assert set(counts) == {"00", "11"}
    assert sum(counts.values()) == 1024
    assert abs(counts["00"] - 512) < 64  # 4 sigma of a fair binomial over 1024 shots
    assert result[0].metadata["shots"] == 1024


async def test_p1_registers_are_named_as_the_circuit_names_them(service: Any) -> None:
    from qiskit.circuit import ClassicalRegister, QuantumRegister

    qubits, alpha, beta = QuantumRegister(3), ClassicalRegister(2, "alpha"), ClassicalRegister(1, "beta")
    circuit = QuantumCircuit(qubits, alpha, beta)
    circuit.x(0)
    circuit.measure([0, 1], alpha)
    circuit.measure([2], beta)
    job = await qmux.Sampler(mode=service.backend("qpu")).run([circuit], shots=10)
    data = (await job.result())[0].data
    assert data.alpha.get_counts() == {"01": 10}
    assert data.beta.get_counts() == {"0": 10}


async def test_p1_shots_default_and_pub_shots_win_over_run_shots(service: Any) -> None:
    backend = service.backend("qpu")
    result = await (await qmux.Sampler(mode=backend).run([(bell(),), (bell(), None, 7)], shots=20)).result()
    assert [r.data.meas.num_shots for r in result] == [20, 7]
    result = await (await qmux.Sampler(mode=backend, default_shots=30).run([(bell(),)])).result()
    assert result[0].data.meas.num_shots == 30
    result = await (await qmux.Sampler(mode=backend).run([(bell(),)])).result()
    assert result[0].data.meas.num_shots == 4096  # IBM's server default


async def test_p1_parameterised_circuits_broadcast_like_qiskit(service: Any) -> None:
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(2)
    circuit.ry(a, 0)
    circuit.ry(b, 1)
    circuit.measure_all()
    values = np.array([[[0.0, 0.0], [np.pi, 0.0], [np.pi, np.pi]]])  # shape (1, 3, 2): three bindings
    job = await qmux.Sampler(mode=service.backend("qpu")).run([(circuit, values)], shots=50)
    ours = (await job.result())[0].data.meas
    theirs = StatevectorSampler(seed=SEED).run([(circuit, values)], shots=50).result()[0].data.meas
    assert ours.shape == theirs.shape == (1, 3)
    assert [ours.get_counts((0, i)) for i in range(3)] == [{"00": 50}, {"01": 50}, {"11": 50}]


# -- P2: the estimator ---------------------------------------------------------------------------


async def test_p2_zz_of_a_bell_state_is_one(service: Any) -> None:
    async with qmux.Session(service=service, backend="qpu") as session:
        estimator = qmux.Estimator(mode=session)
        noisy = await (await estimator.run([(bell(False), SparsePauliOp("ZZ"))])).result()
        exact = await (await estimator.run([(bell(False), SparsePauliOp("ZZ"))], precision=0.0)).result()
    assert float(noisy[0].data.evs) == pytest.approx(1.0, abs=5 * 0.015625)
    assert float(noisy[0].data.stds) == 0.015625  # the precision the noise was drawn with
    assert noisy[0].metadata["target_precision"] == 0.015625
    assert float(exact[0].data.evs) == pytest.approx(1.0, abs=1e-12)
    assert float(exact[0].data.stds) == 0.0


async def test_p2_final_measurements_are_ignored_and_observables_broadcast(service: Any) -> None:
    theta = Parameter("t")
    circuit = QuantumCircuit(1)
    circuit.ry(theta, 0)
    circuit.measure_all()  # left in by habit: an estimator ignores final measurements
    observables = [[SparsePauliOp("Z")], [SparsePauliOp("X")]]  # shape (2, 1)
    values = np.array([[0.0], [np.pi / 2], [np.pi]])  # shape (3,)
    job = await qmux.Estimator(mode=service.backend("qpu")).run([(circuit, observables, values, 0.0)])
    evs = (await job.result())[0].data.evs
    reference = StatevectorEstimator().run([(circuit.remove_final_measurements(inplace=False), observables, values)])
    assert evs.shape == (2, 3)
    np.testing.assert_allclose(evs, reference.result()[0].data.evs, atol=1e-12)
    np.testing.assert_allclose(evs, [[1, 0, -1], [0, 1, 0]], atol=1e-12)


async def test_p2_precision_per_pub_and_per_run(service: Any) -> None:
    estimator = qmux.Estimator(mode=service.backend("qpu"), default_precision=0.1)
    pubs = [(bell(False), "ZZ"), (bell(False), "ZZ", None, 0.0)]
    result = await (await estimator.run(pubs)).result()
    assert [float(r.data.stds) for r in result] == [0.1, 0.0]
    result = await (await estimator.run(pubs, precision=0.2)).result()
    assert [r.metadata["target_precision"] for r in result] == [0.2, 0.0]


# -- P3: where a primitive sends its jobs ------------------------------------------------------


async def test_p3_primitives_pick_up_the_session_of_the_async_with(service: Any) -> None:
    async with qmux.Session(service=service, backend="qpu") as outer:
        sampler = qmux.Sampler()
        async with qmux.Session(service=service, backend="other") as inner:
            estimator = qmux.Estimator()
        job = await sampler.run([(bell(),)], shots=10)
        await job.result()
    assert sampler.mode is outer and estimator.mode is inner
    assert job.session_id == outer.session_id and job.backend_name == "qpu"


async def test_p3_mode_session_and_job_mode(service: Any) -> None:
    session = qmux.Session(service=service, backend="qpu")
    try:
        in_session = await qmux.Sampler(mode=session).run([(bell(),)], shots=10)
        job_mode = await qmux.Sampler(mode=service.backend("other")).run([(bell(),)], shots=10)
        await in_session.result()
        await job_mode.result()
    finally:
        await session.close()
    assert in_session.session_id == session.session_id
    assert job_mode.session_id is None and job_mode.backend_name == "other"


async def test_p3_no_mode_outside_a_session_is_refused_with_the_fix() -> None:
    with pytest.raises(qmux.InvalidInputError, match="mode="):
        qmux.Sampler()
    with pytest.raises(qmux.InvalidInputError, match="mode="):
        qmux.Estimator()
    with pytest.raises(qmux.InvalidInputError, match="must be a Session"):
        qmux.Sampler(mode="qpu")  # type: ignore[arg-type]


async def test_p3_a_primitive_outliving_its_session_is_refused_at_submit(service: Any) -> None:
    async with qmux.Session(service=service, backend="qpu"):
        sampler = qmux.Sampler()
    with pytest.raises(qmux.SessionClosedError):
        await sampler.run([(bell(),)])


# -- S11: several primitives in one session ----------------------------------------------------


async def test_s11_sampler_estimator_and_custom_jobs_mix_in_one_session(service: Any) -> None:
    async with qmux.Session(service=service, backend="qpu") as session:
        sampler, estimator = qmux.Sampler(), qmux.Estimator()
        jobs = [
            await sampler.run([(bell(),)], shots=10),
            await estimator.run([(bell(False), "ZZ")], precision=0.0),
            await session.run("echo", {"x": 1}),
            await sampler.run([(bell(),)], shots=20),
        ]
        results = [await job.result() for job in jobs]
    assert [job.program_id for job in jobs] == ["sampler", "estimator", "echo", "sampler"]
    assert {job.session_id for job in jobs} == {session.session_id}
    assert jobs[0].job_id == session.session_id  # the root job
    assert results[0][0].data.meas.num_shots == 10
    assert float(results[1][0].data.evs) == pytest.approx(1.0)
    assert results[2] == {"x": 1}
    assert results[3][0].data.meas.num_shots == 20


# -- malformed PUBs: refused at run(), nothing submitted ----------------------------------------


def _parametric() -> QuantumCircuit:
    circuit = QuantumCircuit(1)
    circuit.ry(Parameter("a"), 0)
    circuit.measure_all()
    return circuit


SAMPLER_MISTAKES: list[tuple[str, Any, dict[str, Any], str]] = [
    ("pub of four elements", [(bell(), None, 10, "extra")], {}, r"sampler pub 0 has 4 elements; a PUB is \(circuit,\)"),
    ("empty pub", [()], {}, "sampler pub 0 has 0 elements"),
    ("negative pub shots", [(bell(), None, -5)], {}, r"sampler pub 0 shots=-5 must be a positive whole number"),
    ("negative run shots", [(bell(),)], {"shots": -1}, r"shots=-1 must be a positive whole number"),
    ("zero run shots", [(bell(),)], {"shots": 0}, r"shots=0 must be a positive"),
    ("fractional shots", [(bell(), None, 2.5)], {}, r"shots=2.5 must be a positive whole number"),
    ("no classical register", [(bell(False),)], {}, "no classical register"),
    ("not a circuit", [("bell",)], {}, "sampler pub 0 starts with a str; a PUB starts with a QuantumCircuit"),
    ("pub not wrapped in a list", (bell(), None), {}, r"takes a list of PUBs; wrap a single one"),
    ("bare circuit, not a list", bell(), {}, "takes a list of PUBs"),
    ("no pubs", [], {}, "got no PUBs"),
    ("missing parameter values", [(bell(),), (_parametric(),)], {}, r"sampler pub 1: .*values \(0\).*parameters \(1\)"),
    ("values for an unparameterised circuit", [(bell(), [0.1])], {}, r"shape \(1,\) do not fit a circuit with 0"),
    ("ragged parameter values", [(_parametric(), [[0.1], [0.2, 0.3]])], {}, "ragged"),
]


@pytest.mark.parametrize(
    ("pubs", "kwargs", "message"), [m[1:] for m in SAMPLER_MISTAKES], ids=[m[0] for m in SAMPLER_MISTAKES]
)
async def test_p1_malformed_sampler_pubs_are_refused_with_clear_errors(
    service: Any, pubs: Any, kwargs: dict[str, Any], message: str
) -> None:
    session = qmux.Session(service=service, backend="qpu")
    with pytest.raises(qmux.InvalidInputError, match=message):
        await qmux.Sampler(mode=session).run(pubs, **kwargs)
    assert await session.status() == "Pending"  # nothing was submitted: the session never started (S3)
    assert (await session.details())["last_job_started"] is None
    await session.close()


ESTIMATOR_MISTAKES: list[tuple[str, Any, dict[str, Any], str]] = [
    ("observable of the wrong width", [(bell(False), SparsePauliOp("ZZZ"))], {}, r"estimator pub 0: .*circuit \(2\)"),
    ("pub of one element", [(bell(False),)], {}, r"estimator pub 0 has 1 elements; a PUB is \(circuit, observables\)"),
    ("pub of five elements", [(bell(False), "ZZ", None, 0.1, 1)], {}, "has 5 elements"),
    ("bare circuit", [bell(False)], {}, "bare circuit; an estimator PUB needs observables"),
    ("negative pub precision", [(bell(False), "ZZ", None, -0.1)], {}, "precision=-0.1 must be a finite number >= 0"),
    ("negative run precision", [(bell(False), "ZZ")], {"precision": -1.0}, "precision=-1.0 must be"),
    ("not an observable", [(bell(False), 42)], {}, "estimator pub 0: Invalid observable type"),
    ("parameter count mismatch", [(bell(False), "ZZ", [0.1])], {}, r"estimator pub 0: .*with 0 parameters \(none\)"),
]


@pytest.mark.parametrize(
    ("pubs", "kwargs", "message"), [m[1:] for m in ESTIMATOR_MISTAKES], ids=[m[0] for m in ESTIMATOR_MISTAKES]
)
async def test_p2_malformed_estimator_pubs_are_refused_with_clear_errors(
    service: Any, pubs: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(qmux.InvalidInputError, match=message):
        await qmux.Estimator(mode=service.backend("qpu")).run(pubs, **kwargs)
    assert service.backend("qpu").pending_jobs == 0


async def test_p1_p2_bad_primitive_options_are_refused(service: Any) -> None:
    backend = service.backend("qpu")
    with pytest.raises(qmux.InvalidInputError, match="default_shots=0"):
        qmux.Sampler(mode=backend, default_shots=0)
    with pytest.raises(qmux.InvalidInputError, match=r"default_precision=-0\.5"):
        qmux.Estimator(mode=backend, default_precision=-0.5)
    with pytest.raises(qmux.InvalidInputError, match="seed=-1"):
        qmux.Estimator(mode=backend, seed=-1)


# -- J3: a job the device cannot run fails alone -------------------------------------------------


async def test_j3_a_too_wide_circuit_fails_only_its_own_job(service: Any) -> None:
    wide = QuantumCircuit(6)
    wide.h(0)
    wide.measure_all()
    async with qmux.Session(service=service, backend="qpu") as session:
        sampler = qmux.Sampler()
        before = await sampler.run([(bell(),)], shots=10)
        too_wide = await sampler.run([(bell(),), (wide,)], shots=10)
        after = await sampler.run([(bell(),)], shots=10)
        with pytest.raises(qmux.JobFailedError, match="has 6 qubits but backend 'qpu' has 5") as failure:
            await too_wide.result()
        assert "InvalidInputError" in str(failure.value)  # the backend's own error, named (its __cause__ locally)
        assert (await before.result())[0].data.meas.num_shots == 10
        assert (await after.result())[0].data.meas.num_shots == 10
        assert await session.status() == "In progress, accepting new jobs"
    assert await too_wide.status() == "ERROR"
