"""``qmux demo``: IBM's "Run jobs in a session", paragraph by paragraph, on the embedded backends.

Every step runs for real: circuits are simulated, jobs take device time, sessions go through
their states. Each line starts with the time since the demo began, so that queueing, ITTL and
max_time can be seen. ``--fast`` runs on a virtual clock (`trio.testing.MockClock`), which
skips the waiting but keeps the times printed exactly as a real run shows them.

The demo is an application: it configures structlog (warnings and errors only), so that what
it prints is the walkthrough.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import structlog
import trio
import trio.testing

import qmux

from ..backends import LocalBackend, default_backends
from ..primitives import Estimator, Sampler

__all__ = ["run_demo"]


def run_demo(*, fast: bool) -> int:
    """Run the walkthrough; return the process exit code."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    clock = trio.testing.MockClock(autojump_threshold=0) if fast else None
    trio.run(_walkthrough, clock=clock)
    return 0


class _Narrator:
    """Prints lines stamped with the time since the demo began, on Trio's clock."""

    def __init__(self) -> None:
        self._start = trio.current_time()

    def heading(self, title: str) -> None:
        print(f"\n== {title} " + "=" * max(0, 74 - len(title)))

    def say(self, text: str) -> None:
        print(f"[{trio.current_time() - self._start:6.2f}s] {text}")

    async def status(self, session: qmux.Session, label: str = "session") -> None:
        self.say(f"{label} status: {await session.status()}")

    async def outcome(self, name: str, job: qmux.Job) -> Any:
        """Wait for `job` and print what became of it; return its result, or None if it failed."""
        try:
            result = await job.result()
        except qmux.JobError as exc:
            self.say(f"{name} {await job.status()}: {exc}")
            return None
        self.say(f"{name} {await job.status()}")
        return result

    async def timeline(self, session: qmux.Session) -> None:
        """The session's state changes, as `details()["timestamps"]` records them (SPEC S18)."""
        details = await session.details()
        stamps = details["timestamps"]
        first = _seconds(stamps[0]["timestamp"])
        steps = ", ".join(f"{s['status']} +{_seconds(s['timestamp']) - first:.2f}s" for s in stamps)
        self.say(f"state timeline: {steps}")


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _circuits() -> tuple[Any, Any, Any]:
    """A Bell circuit to sample, the same without measurements, and the observable ZZ."""
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import SparsePauliOp

    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    bell = circuit.copy()
    bell.measure_all()
    return bell, circuit, SparsePauliOp("ZZ")


async def _walkthrough() -> None:
    out = _Narrator()
    bell, circuit, observable = _circuits()
    async with qmux.open_service(default_backends()) as service:
        await _set_up(out, service)
        await _session_class(out, service, bell, circuit, observable)
        await _context_manager(out, service, bell)
        await _by_name_and_object(out, service, bell)
        await _session_length(out, service)
        await _close(out, service, circuit, observable)
        await _root_job(out, service)
        await _cancel(out, service, circuit, observable)
        await _multiple_primitives(out, service, bell, circuit, observable)
        await _job_mode(out, service, bell)
        await _status(out, service)
        await _details(out, service, circuit, observable)
        await _batches_and_policies(out, service, bell)
    await _retries(out)
    out.heading("Done")
    out.say("the service drained and stopped; every job ended DONE, ERROR or CANCELLED")


async def _set_up(out: _Narrator, service: qmux.Service) -> None:
    out.heading("Set up to use sessions")
    out.say("async with qmux.open_service() as service:  # the embedded default backends")
    for b in service.backends():
        kind = "simulator" if b.simulator else "QPU"
        out.say(
            f"  {b.name:16} {b.num_qubits:3} qubits  {kind:9}  max_ttl {qmux.format_duration(b.config.max_ttl)}"
            f"  ITTL {qmux.format_duration(b.config.interactive_ttl)}  pending {b.pending_jobs}"
        )


async def _session_class(out: _Narrator, service: qmux.Service, bell: Any, circuit: Any, observable: Any) -> None:
    out.heading("Open a session: the Session class")
    backend = service.least_busy(operational=True, simulator=False)
    out.say(f"least_busy(operational=True, simulator=False) -> {backend.name}")
    session = qmux.Session(backend=backend)
    estimator = Estimator(mode=session)
    sampler = Sampler(mode=session)
    await out.status(session, "opened;")  # Pending: a session starts with its first job (S3)
    job = await sampler.run([(bell,)], shots=1024)
    out.say(f"sampler job {job.job_id} submitted (the root job: its id is the session id {session.session_id})")
    result = await out.outcome("sampler job", job)
    out.say(f"  counts: {result[0].data.meas.get_counts()}")
    await out.status(session)
    job = await estimator.run([(circuit, observable)])
    result = await out.outcome("estimator job", job)
    out.say(f"  <ZZ> = {float(result[0].data.evs):.4f} +/- {float(result[0].data.stds):.4f}")
    await session.close()
    await out.status(session, "session.close();")


async def _context_manager(out: _Narrator, service: qmux.Service, bell: Any) -> None:
    out.heading("Open a session: the context manager")
    backend = service.least_busy(operational=True, simulator=False)
    async with qmux.Session(backend=backend) as session:
        sampler = Sampler()  # no mode: it picks the session up (P3)
        out.say(
            f"Sampler() inside `async with Session(...)` uses session {sampler.mode is session and session.session_id}"
        )
        job = await sampler.run([(bell,)])
        result = await out.outcome("sampler job", job)
        out.say(
            f"  counts over {result[0].data.meas.num_shots} shots (the default): {result[0].data.meas.get_counts()}"
        )
    await out.status(session, "left the block;")


async def _by_name_and_object(out: _Narrator, service: qmux.Service, bell: Any) -> None:
    out.heading("Specify a system by name, or pass a backend object")
    async with qmux.Session(service=service, backend="fake_kyiv") as session:
        out.say(f"Session(service=service, backend='fake_kyiv') -> {session.backend_name}")
    backend = service.backend("fake_torino")
    async with qmux.Session(backend=backend) as session:
        out.say(f"Session(backend=service.backend('fake_torino')) -> {session.backend_name}")
    for name in ("ibm_nowhere",):
        try:
            qmux.Session(service=service, backend=name)
        except qmux.QmuxError as exc:
            out.say(f"Session(backend={name!r}) refused: {type(exc).__name__}: {exc}")


async def _session_length(out: _Narrator, service: qmux.Service) -> None:
    out.heading("Session length: max_time and the interactive timeout (ITTL)")
    async with qmux.Session(service=service, backend="fake_sherbrooke", max_time="25m") as session:
        details = await session.details()
        out.say(
            f"max_time='25m' -> details()['max_time'] = {details['max_time']:g}s, "
            f"interactive_timeout = {details['interactive_timeout']:g}s (the backend's; not settable)"
        )
    try:
        qmux.Session(service=service, backend="fake_sherbrooke", max_time="9h")
    except qmux.InvalidInputError as exc:
        out.say(f"max_time='9h' refused: {exc}")

    out.say("max_time=1.0 on fake_torino (0.4 s per job), four jobs queued at once:")
    session = qmux.Session(service=service, backend="fake_torino", max_time=1.0)
    jobs = [await session.run("echo", {"n": n}) for n in range(4)]
    for n, job in enumerate(jobs):
        await out.outcome(f"  job {n}", job)
    out.say("  (job 2 was running when max_time ran out: it completed and kept its result)")
    await out.status(session)

    ittl = service.backend("fake_kyiv").config.interactive_ttl
    out.say(f"ITTL: fake_kyiv keeps an idle session active for {ittl:g}s after its last job")
    async with qmux.Session(service=service, backend="fake_kyiv") as session:
        await out.outcome("  job 0", await session.run("echo", {}))
        await out.status(session, "  right after it:")
        await trio.sleep(ittl + 0.5)
        await out.status(session, f"  {ittl + 0.5:g}s later, no job queued, deactivated:")
        job = await session.run("echo", {})
        await out.outcome("  job 1", job)
        await out.status(session, "  the next job reactivated it:")
        await out.timeline(session)


async def _close(out: _Narrator, service: qmux.Service, circuit: Any, observable: Any) -> None:
    out.heading("Close a session")
    async with qmux.Session(service=service, backend="fake_sherbrooke") as session:
        estimator = Estimator()
        job1 = await estimator.run([(circuit, observable)])
        job2 = await estimator.run([(circuit, observable)])
    await out.status(session, "left the block with two jobs in flight;")
    for name, job in (("job1", job1), ("job2", job2)):
        result = await out.outcome(name, job)
        out.say(f"  {name} <ZZ> = {float(result[0].data.evs):.4f}")
    await out.status(session, "after the last job,")
    try:
        await estimator.run([(circuit, observable)])
    except qmux.SessionClosedError as exc:
        out.say(f"submitting again refused: {exc}")

    out.say("without a context manager: close() by hand once the results are in")
    session = qmux.Session(service=service, backend="fake_kyiv")
    estimator = Estimator(mode=session)
    job1 = await estimator.run([(circuit, observable)])
    job2 = await estimator.run([(circuit, observable)])
    for name, job in (("Result1", job1), ("Result2", job2)):
        result = await job.result()
        out.say(f"  {name}: evs={float(result[0].data.evs):.4f}")
    await session.close()
    await out.status(session, "session.close();")


async def _root_job(out: _Narrator, service: qmux.Service) -> None:
    out.heading("When the root job is canceled")
    session = qmux.Session(service=service, backend="fake_torino")
    jobs = [await session.run("echo", {"n": n}) for n in range(3)]
    out.say(f"root job {jobs[0].job_id} == session id {session.session_id}: {jobs[0].job_id == session.session_id}")
    await jobs[0].cancel()
    for n, job in enumerate(jobs):
        await out.outcome(f"  job {n}", job)
    await out.status(session)


async def _cancel(out: _Narrator, service: qmux.Service, circuit: Any, observable: Any) -> None:
    out.heading("Cancel a session")
    async with qmux.Session(service=service, backend="fake_kyiv") as session:
        estimator = Estimator()
        job1 = await estimator.run([(circuit, observable)])
        job2 = await estimator.run([(circuit, observable)])
        await trio.sleep(0.1)  # job1 is running by now; job2 is queued behind it
        out.say(f"job1 {await job1.status()}, job2 {await job2.status()}; session.cancel()")
        await session.cancel()
        await out.status(session)
    await out.outcome("job1", job1)
    await out.outcome("job2", job2)


async def _multiple_primitives(out: _Narrator, service: qmux.Service, bell: Any, circuit: Any, observable: Any) -> None:
    out.heading("Invoke multiple primitives in a session")
    backend = service.least_busy(operational=True, simulator=False)
    async with qmux.Session(backend=backend):
        sampler = Sampler()
        estimator = Estimator()
        job = await sampler.run([(bell,)])
        result = await job.result()
        out.say(f" > Counts: {result[0].data.meas.get_counts()}")
        job = await estimator.run([(circuit, observable)])
        result = await job.result()
        out.say(f" > Expectation value: {result[0].data.evs}")
        out.say(f" > Metadata: {result[0].metadata}")


async def _job_mode(out: _Narrator, service: qmux.Service, bell: Any) -> None:
    out.heading("Job mode: a primitive on a backend, outside any session")
    backend = service.least_busy(operational=True, simulator=True)
    job = await Sampler(mode=backend).run([(bell,)], shots=100)
    result = await out.outcome(f"Sampler(mode={backend.name}) job", job)
    out.say(f"  session_id={job.session_id}, counts: {result[0].data.meas.get_counts()}")


async def _status(out: _Narrator, service: qmux.Service) -> None:
    out.heading("Check session status")
    session = qmux.Session(service=service, backend="fake_sherbrooke")
    seen: list[str] = [await session.status()]
    out.say(f"opened: {seen[-1]}")
    jobs = [await session.run("echo", {"n": n}) for n in range(2)]
    await trio.sleep(0.1)
    seen.append(await session.status())
    out.say(f"first job running: {seen[-1]}")
    await session.close()
    seen.append(await session.status())
    out.say(f"closed with a job still queued: {seen[-1]}")
    for job in jobs:
        await job.result()
    seen.append(await session.status())
    out.say(f"after its last job: {seen[-1]}")
    out.say(f"the four statuses, in order: {_distinct(seen)}")


async def _details(out: _Narrator, service: qmux.Service, circuit: Any, observable: Any) -> None:
    out.heading("Determine session details")
    async with qmux.Session(service=service, backend="fake_torino") as session:
        estimator = Estimator()
        job = await estimator.run([(circuit, observable)])
        await job.result()
        details = await session.details()
    for key, value in details.items():
        if key != "timestamps":
            out.say(f"  {key:20} {value!r}")
    await out.timeline(session)


async def _batches_and_policies(out: _Narrator, service: qmux.Service, bell: Any) -> None:
    out.heading("Batches and policies (beyond IBM's session rules: SPEC B1-B3, F1, L1)")
    backend = service.backend("fake_sherbrooke")
    async with qmux.Batch(service=service, backend=backend) as batch:
        jobs = [await Sampler().run([(bell,)], shots=100) for _ in range(2)]
        for job in jobs:
            await job.result()
        start = trio.current_time()
        outsider = await Sampler(mode=backend).run([(bell,)], shots=100)
        await outsider.result()
        took = trio.current_time() - start
        ittl = qmux.format_duration(backend.config.interactive_ttl)
        out.say(f"a batch never holds its backend idle: a job-mode job after it took {took:.2f}s (no {ittl} ITTL wait)")
        details = await batch.details()
    out.say(f"batch mode={details['mode']!r}: usage_time {details['usage_time']:.2f}s counts its jobs' run time only")
    wide = _wide_circuit()
    aborting = qmux.Session(service=service, backend=backend, failure_policy="abort")
    first = await Sampler(mode=aborting).run([(bell,)], shots=10)  # runs while the next two queue
    failed = await Sampler(mode=aborting).run([(wide,)], shots=10)
    queued = await Sampler(mode=aborting).run([(bell,)], shots=10)
    await out.outcome("failure_policy='abort': a first job", first)
    await out.outcome("then a 21-qubit job", failed)
    await out.outcome("the job queued after it", queued)
    out.say(f"closed_reason: {(await aborting.details())['closed_reason']}")
    limited = qmux.Session(service=service, backend=backend, max_jobs=2)
    for _ in range(2):
        await limited.run("echo", {})
    out.say(f"max_jobs=2 after two jobs: {await limited.status()}")
    try:
        await limited.run("echo", {})
    except qmux.SessionClosedError as refused:
        out.say(f"a third job refused: {refused}")
    await limited.close()


async def _retries(out: _Narrator) -> None:
    out.heading("Retries of transient failures (SPEC R1)")
    calls: list[str] = []

    def calibrate(request: qmux.JobRequest) -> object:
        calls.append(request.job_id)
        if len(calls) < 3:
            raise qmux.TransientBackendError("the device was busy")
        return "calibrated"

    flaky = LocalBackend(
        "flaky_qpu",
        qmux.BackendConfig(num_qubits=5, retries=2, retry_backoff=0.5),
        programs={"calibrate": calibrate},
    )
    async with qmux.open_service([flaky]) as service:
        job = await service.backend("flaky_qpu").run("calibrate", None)
        await out.outcome("BackendConfig(retries=2): a job that fails transiently twice", job)
        out.say(f"attempts: {(await job.metrics())['attempts']}, same job id each time: {len(set(calls)) == 1}")


def _wide_circuit() -> Any:
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(21)
    circuit.h(0)
    circuit.measure_all()
    return circuit


def _distinct(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))
