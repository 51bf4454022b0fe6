"""primitives: a Bell-circuit sampler job through qmux, against calling the same simulator directly.

**qmux**: ``await (await qmux.Sampler(mode=session, seed=...).run([(bell,)], shots=4096)).result()``
in a session on a `LocalBackend` with no device time (``job_seconds=0``), one job after the other.
The backend simulates the job with qiskit's reference ``StatevectorSampler`` (inline, because a
Bell circuit is cheap), after checking the PUBs as a server would.

**Baseline**: the same simulator called directly on the same circuit, shots and seed:
``StatevectorSampler(default_shots=4096, seed=...).run([(bell,)]).result()``, in the same
process, alternating with qmux round by round. The figure is the median time per job; the
target reads qmux's time as a multiple of the direct time.
"""

from __future__ import annotations

import time
from typing import Any

import trio

import qmux
from qmux.backends import LocalBackend

from ._common import Result, Row, alternate, configure_logging, median

__all__ = ["run"]

TARGET = 1.1
SHOTS = 4096
SEED = 1234


def _available() -> str | None:
    try:
        import qiskit  # noqa: F401
        from qiskit.primitives import StatevectorSampler  # noqa: F401
    except ImportError as exc:
        return f"qiskit is not installed ({exc}); pip install 'qmux[qiskit]'"
    if not hasattr(qmux, "Sampler"):
        return "not available yet: qmux.Sampler is missing"
    return None


def _bell() -> Any:
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return circuit


def _check(counts: dict[str, int]) -> None:
    if set(counts) - {"00", "11"} or sum(counts.values()) != SHOTS:
        raise AssertionError(f"a Bell circuit gave {counts}")


def _qmux_sampler(jobs: int) -> float:
    bell = _bell()

    async def main() -> float:
        backend = LocalBackend("qpu", qmux.BackendConfig(num_qubits=5), job_seconds=0.0)
        async with (
            qmux.open_service([backend]) as service,
            qmux.Session(service=service, backend="qpu") as session,
        ):
            sampler = qmux.Sampler(mode=session, seed=SEED)
            start = time.perf_counter()
            for _ in range(jobs):
                result = await (await sampler.run([(bell,)], shots=SHOTS)).result()
                _check(result[0].data.meas.get_counts())
            return (time.perf_counter() - start) / jobs

    return trio.run(main)


def _direct_sampler(jobs: int) -> float:
    from qiskit.primitives import StatevectorSampler

    bell = _bell()
    start = time.perf_counter()
    for _ in range(jobs):
        result = StatevectorSampler(default_shots=SHOTS, seed=SEED).run([(bell,)]).result()
        _check(result[0].data.meas.get_counts())
    return (time.perf_counter() - start) / jobs


def run(quick: bool = False) -> Result:
    configure_logging()
    result = Result(name="primitives", method=(__doc__ or "").split("\n\n", 1)[1].strip())
    missing = _available()
    if missing:
        result.skipped = missing
        return result
    jobs, rounds = (20, 1) if quick else (200, 5)
    samples = alternate(rounds, {"qmux": lambda: _qmux_sampler(jobs), "direct": lambda: _direct_sampler(jobs)})
    mine, floor = median(samples["qmux"]), median(samples["direct"])
    result.rows.append(
        Row(
            measure=f"time per Bell sampler job, {SHOTS} shots",
            qmux=mine * 1000,
            unit="ms",
            baseline=floor * 1000,
            ratio=mine / floor,
            target=f"≤ {TARGET}x direct",
            met=mine / floor <= TARGET,
        )
    )
    result.extra = {"samples_seconds_per_job": samples}
    result.method += f"\n\n{jobs} jobs per sample, {rounds} alternating round(s) after a warm-up; medians."
    return result
