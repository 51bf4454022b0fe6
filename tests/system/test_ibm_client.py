"""The seed guide's session code, run by the real qiskit-ibm-runtime client against ``qmux serve --ibm-compat``.

One real server (``python -m qmux serve --ibm-compat``, 127.0.0.1, a free port) serves the
module; the clients are told nothing but the ``export`` lines it printed. Each test is one of
the guide's snippets (``seed/ibm-quantum-run-jobs-in-a-session.txt``), run unmodified except
where qiskit-ibm-runtime 0.51 itself changed the API (each such line says so), and asserts on
what the client prints: counts, expectation values, status strings, details, the errors of a
closed session. The snippets run in a long-lived client process (tests/support/ibm_client_worker.py)
to pay the client's import once; the first test runs a fresh ``python`` as a user would.

The backends are fast and have short limits (ITTL 2 s, a 3 s max_ttl), so the ITTL and
max_time rules show through the client within seconds, on the real clock.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import qmux

from ..support.ibm import ClientProcess, IbmServer

ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789"

CONFIG = f"""
[server]
host = "127.0.0.1"
port = 0

[service]
shutdown_grace = 2.0

[[tenants]]
name = "alice"
token = "{ALICE}"

[[tenants]]
name = "bob"
token = "{BOB}"

# least_busy(operational=True, simulator=False) picks it: the first of the idle QPUs
[backends.fake_quick]
num_qubits = 127
job_seconds = 0.2
interactive_ttl = "2s"
seed = 1234

# one second per job: a second job is still queued while the first runs
[backends.fake_slow]
num_qubits = 27
job_seconds = 1.0
interactive_ttl = "2s"
seed = 1234

# a short max_ttl, for max_time
[backends.fake_brief]
num_qubits = 5
job_seconds = 0.8
max_ttl = "3s"
interactive_ttl = "2s"
seed = 1234

[backends.local_sim]
num_qubits = 20
simulator = true
concurrency = 4

# a device-like QPU: IBM's heavy-hex lattice, no fractional gates (last, so least_busy's ties go elsewhere)
[backends.fake_hex]
num_qubits = 12
coupling_map = "heavy_hex"
fractional_gates = false
job_seconds = 0.2
interactive_ttl = "2s"
seed = 1234
"""

#: what every snippet starts with: the imports, and the circuits the guide leaves to the reader
PREAMBLE = """
import time
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import Batch, EstimatorV2, QiskitRuntimeService, SamplerV2, Session

sampler_circuit = QuantumCircuit(2)
sampler_circuit.h(0)
sampler_circuit.cx(0, 1)
sampler_circuit.measure_all()
circuit = QuantumCircuit(2)
circuit.h(0)
circuit.cx(0, 1)
observable = SparsePauliOp("ZZ")
service = QiskitRuntimeService()
"""

#: the keys of qiskit-ibm-runtime's Session.details() (SPEC S18)
DETAILS_KEYS = {
    "id",
    "backend_name",
    "interactive_timeout",
    "max_time",
    "active_timeout",
    "state",
    "accepting_jobs",
    "last_job_started",
    "last_job_completed",
    "started_at",
    "closed_at",
    "activated_at",
    "mode",
    "usage_time",
    "timestamps",
}
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IbmServer]:
    directory = tmp_path_factory.mktemp("ibm")
    config = directory / "qmux.toml"
    config.write_text(CONFIG)
    running = IbmServer(config, directory / "server.log")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def alice(server: IbmServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientProcess]:
    client = ClientProcess(server.client_environment(ALICE), tmp_path_factory.mktemp("alice") / "client.log")
    try:
        yield client
    finally:
        client.stop()


def run(client: ClientProcess, snippet: str) -> str:
    return client.run(PREAMBLE + textwrap.dedent(snippet))


def printed(output: str, label: str) -> str:
    """What the snippet printed after `label` (the first line that starts with it)."""
    for line in output.splitlines():
        if line.startswith(label):
            return line[len(label) :].strip()
    raise AssertionError(f"nothing printed as {label!r} in:\n{output}")


def assert_bell_counts(text: str, shots: int = 4096) -> None:
    counts = ast.literal_eval(text)
    assert set(counts) == {"00", "11"}, counts
    assert sum(counts.values()) == shots


def assert_ev_near_one(text: str) -> None:
    value = float(text.strip("[]"))
    assert abs(value - 1.0) < 0.1, value  # <ZZ> of a Bell pair, with the estimator's precision noise


# -- "Set up to use sessions" ----------------------------------------------------------------------


def test_setup_in_a_fresh_process_with_the_printed_environment(server: IbmServer) -> None:
    """The guide's set-up, verbatim, in a new ``python``: the printed lines are all it needs (SPEC S6)."""
    assert server.printed[0].startswith("qmux serving on http://127.0.0.1:")
    assert server.environment["QISKIT_IBM_URL"] == f"{server.url}/experimental"
    setup = textwrap.dedent(
        """
        from qiskit_ibm_runtime import QiskitRuntimeService, Session, Sampler, Estimator

        service = QiskitRuntimeService()
        print("backends:", sorted(backend.name for backend in service.backends()))
        print("least busy:", service.least_busy(operational=True, simulator=False).name)
        print("least busy simulator:", service.least_busy(operational=True, simulator=True).name)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", setup],
        env=server.client_environment(ALICE),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent,
    )
    assert done.returncode == 0, done.stderr
    assert ast.literal_eval(printed(done.stdout, "backends:")) == [
        "fake_brief",
        "fake_hex",
        "fake_quick",
        "fake_slow",
        "local_sim",
    ]
    assert printed(done.stdout, "least busy:") == "fake_quick"
    assert printed(done.stdout, "least busy simulator:") == "local_sim"


# -- "Open a session" ------------------------------------------------------------------------------


def test_session_class_closed_by_hand(alice: ClientProcess) -> None:
    """SPEC S2, S3, S12, S17, P3: ``Session(backend=...)`` with primitives in ``mode=session``."""
    output = run(
        alice,
        """
        backend = service.least_busy(operational=True, simulator=False)
        session = Session(backend=backend)  # the guide: Session(service=service, backend=backend); 0.51: no service
        estimator = EstimatorV2(mode=session)  # the guide: Estimator(session=session); 0.51 names it mode
        sampler = SamplerV2(mode=session)
        print("status before any job:", session.status())
        job1 = estimator.run([(circuit, observable)])
        job2 = sampler.run([(sampler_circuit,)])
        print(f"Result1: {job1.result()[0].data.evs}")
        print(f"Result2: {job2.result()[0].data.meas.get_counts()}")
        print("root job is the session:", job1.job_id() == session.session_id)
        print("status:", session.status())
        session.close()
        print("status after close:", session.status())
        """,
    )
    assert printed(output, "status before any job:") == "Pending"
    assert_ev_near_one(printed(output, "Result1:"))
    assert_bell_counts(printed(output, "Result2:"))
    assert printed(output, "root job is the session:") == "True"
    assert printed(output, "status:") == "In progress, accepting new jobs"
    assert printed(output, "status after close:") == "Closed"


def test_context_manager_and_several_primitives(alice: ClientProcess) -> None:
    """SPEC S2, S11, P1, P2, P3: the guide's "Invoke multiple primitives in a session", implicit session."""
    output = run(
        alice,
        """
        backend = service.least_busy(operational=True, simulator=False)
        with Session(backend=backend) as session:
            sampler = SamplerV2()
            estimator = EstimatorV2()

            job = sampler.run([(sampler_circuit,)])
            result = job.result()
            print(f" > Counts: {result[0].data.meas.get_counts()}")
            print("sampler job in the session:", job.session_id == session.session_id)

            job = estimator.run([(circuit, observable)])
            result = job.result()
            print(f" > Expectation value: {result[0].data.evs}")
            print(f" > Metadata: {result[0].metadata}")
            print("stds:", result[0].data.stds)
            print("estimator job in the session:", job.session_id == session.session_id)
        print("status after the block:", session.status())
        """,
    )
    assert_bell_counts(printed(output, " > Counts:"))
    assert_ev_near_one(printed(output, " > Expectation value:"))
    assert ast.literal_eval(printed(output, " > Metadata:"))["target_precision"] == 0.015625
    assert float(printed(output, "stds:")) == 0.015625
    assert printed(output, "sampler job in the session:") == "True"
    assert printed(output, "estimator job in the session:") == "True"
    assert printed(output, "status after the block:") == "Closed"


def test_system_by_name_and_max_time(alice: ClientProcess) -> None:
    """SPEC S1, S4, S5: a backend fetched by name; ``max_time="25m"``; a max_time above max_ttl is refused."""
    output = run(
        alice,
        """
        backend = service.backend("fake_slow")  # the guide passes the name; 0.51's Session wants the backend
        with Session(backend=backend, max_time="25m") as session:
            details = session.details()
            print("backend:", details["backend_name"])
            print("max_time:", details["max_time"])
            print("interactive_timeout:", details["interactive_timeout"])
        try:
            Session(backend=service.backend("fake_brief"), max_time="1h")
        except Exception as error:
            print("refused:", type(error).__name__, error)
        """,
    )
    assert printed(output, "backend:") == "fake_slow"
    assert float(printed(output, "max_time:")) == 1500
    assert float(printed(output, "interactive_timeout:")) == 2
    refusal = printed(output, "refused:")
    assert refusal.startswith("RequestsApiError")
    assert "max_time=3600" in refusal and "max_ttl of backend 'fake_brief' (3s)" in refusal


# -- the clocks ------------------------------------------------------------------------------------


def test_interactive_timeout_deactivates_and_the_next_job_reactivates(alice: ClientProcess) -> None:
    """SPEC S8, S9, S17: idle past the ITTL, the session is Pending (inactive); its next job activates it again."""
    output = run(
        alice,
        """
        backend = service.least_busy(operational=True, simulator=False)
        with Session(backend=backend) as session:
            sampler = SamplerV2()
            sampler.run([(sampler_circuit,)]).result()
            print("after a job:", session.status(), "/", session.details()["state"])
            time.sleep(session.details()["interactive_timeout"] + 1)
            print("after the ITTL:", session.status(), "/", session.details()["state"])
            sampler.run([(sampler_circuit,)]).result()
            print("after the next job:", session.status(), "/", session.details()["state"])
            print("timestamps:", [stamp["status"] for stamp in session.details()["timestamps"]])
        """,
    )
    assert printed(output, "after a job:") == "In progress, accepting new jobs / active"
    assert printed(output, "after the ITTL:") == "Pending / inactive"
    assert printed(output, "after the next job:") == "In progress, accepting new jobs / active"
    assert ast.literal_eval(printed(output, "timestamps:")) == ["open", "active", "inactive", "active"]


def test_max_time_ends_the_session(alice: ClientProcess) -> None:
    """SPEC S10, S15, S19: at max_time the running job finishes, queued ones fail, later submissions are refused."""
    output = run(
        alice,
        """
        backend = service.backend("fake_brief")  # 0.8 s per job
        session = Session(backend=backend, max_time="2s")
        sampler = SamplerV2(mode=session)
        jobs = [sampler.run([(sampler_circuit,)]) for _ in range(4)]  # run at 0, 0.8, 1.6 (past 2 s), queued
        for number, job in enumerate(jobs, 1):
            try:
                print(f"job {number}: counts {sorted(job.result()[0].data.meas.get_counts())}")
            except Exception as error:
                print(f"job {number}: {type(error).__name__}: {error}")
        print("status:", session.status())
        print("state:", session.details()["state"])
        try:
            sampler.run([(sampler_circuit,)])
        except Exception as error:
            print("submitted after max_time:", type(error).__name__, error)
        """,
    )
    for number in (1, 2, 3):  # the third was running when max_time came: it keeps its result
        assert printed(output, f"job {number}:") == "counts ['00', '11']"
    fourth = printed(output, "job 4:")
    assert fourth.startswith("RuntimeJobFailureError") and "reached its max_time" in fourth
    assert printed(output, "status:") == "Closed"
    assert printed(output, "state:") == "closed"
    refusal = printed(output, "submitted after max_time:")
    assert refusal.startswith("IBMRuntimeError") and "Failed to run program: '409" in refusal
    assert "reached its max_time and accepts no jobs" in refusal


# -- "Close a session" -----------------------------------------------------------------------------


def test_leaving_the_block_closes_and_queued_jobs_still_run(alice: ClientProcess) -> None:
    """SPEC S12, S17: "In progress, not accepting new jobs" while they run, then Closed at once."""
    output = run(
        alice,
        """
        backend = service.backend("fake_slow")  # one second per job: job2 is queued when the block ends
        with Session(backend=backend) as session:
            estimator = EstimatorV2()
            job1 = estimator.run([(circuit, observable)])
            job2 = estimator.run([(circuit, observable)])
        # The session is no longer accepting jobs but the submitted job will run to completion.
        print("status after the block:", session.status())
        result = job1.result()
        result2 = job2.result()
        print("evs1:", result[0].data.evs)
        print("evs2:", result2[0].data.evs)
        print("status once they ran:", session.status())
        print("closed_at:", session.details()["closed_at"])
        """,
    )
    assert printed(output, "status after the block:") == "In progress, not accepting new jobs"
    assert_ev_near_one(printed(output, "evs1:"))
    assert_ev_near_one(printed(output, "evs2:"))
    assert printed(output, "status once they ran:") == "Closed"
    assert ISO.fullmatch(printed(output, "closed_at:"))


def test_closed_by_hand_refuses_jobs_on_every_handle(alice: ClientProcess) -> None:
    """SPEC S12, S15: after ``session.close()`` a submission is refused, by the client and by the server (409)."""
    output = run(
        alice,
        """
        backend = service.backend("fake_slow")
        session = Session(backend=backend)
        estimator = EstimatorV2(mode=session)
        job1 = estimator.run([(circuit, observable)])
        job2 = estimator.run([(circuit, observable)])
        print(f"Result1: {job1.result()[0].data.evs}")
        print(f"Result2: {job2.result()[0].data.evs}")
        other = Session.from_id(session.session_id, service)  # a second handle, made while it is open

        # Manually close the session. Running and queued jobs will run to completion.
        session.close()
        print("status:", session.status())
        try:
            EstimatorV2(mode=session).run([(circuit, observable)])
        except Exception as error:
            print("through the closed handle:", type(error).__name__, error)
        try:
            EstimatorV2(mode=other).run([(circuit, observable)])
        except Exception as error:
            print("through the other handle:", type(error).__name__, error)
        """,
    )
    assert_ev_near_one(printed(output, "Result1:"))
    assert_ev_near_one(printed(output, "Result2:"))
    assert printed(output, "status:") == "Closed"
    assert printed(output, "through the closed handle:") == "IBMRuntimeError 'The session is closed.'"
    refusal = printed(output, "through the other handle:")
    assert refusal.startswith("IBMRuntimeError") and "Failed to run program: '409" in refusal
    assert "was closed and accepts no jobs" in refusal


def test_cancelling_the_root_job_fails_the_session(alice: ClientProcess) -> None:
    """SPEC S14, J1: the root job's id is the session's; cancelling it fails the others and later submissions."""
    output = run(
        alice,
        """
        backend = service.backend("fake_slow")
        session = Session(backend=backend)
        sampler = SamplerV2(mode=session)
        root = sampler.run([(sampler_circuit,)])
        second = sampler.run([(sampler_circuit,)])
        print("root job is the session:", root.job_id() == session.session_id)
        root.cancel()
        for name, job in (("root", root), ("second", second)):
            try:
                job.result()
                print(f"{name}: done")
            except Exception as error:
                print(f"{name}: {type(error).__name__}: {error}")
        print("status:", session.status())
        print("server states:", service.job(root.job_id()).status(), service.job(second.job_id()).status())
        try:
            sampler.run([(sampler_circuit,)])
        except Exception as error:
            print("later submission:", type(error).__name__, error)
        print("root id:", root.job_id())
        """,
    )
    root_id = printed(output, "root id:")
    assert printed(output, "root job is the session:") == "True"
    assert printed(output, "root:").startswith("RuntimeInvalidStateError")
    second = printed(output, "second:")
    assert second.startswith("RuntimeJobFailureError") and f"its root job {root_id} was cancelled" in second
    assert printed(output, "status:") == "Closed"
    assert printed(output, "server states:") == "CANCELLED ERROR"
    later = printed(output, "later submission:")
    assert "409" in later and f"root job {root_id} was cancelled" in later


# -- "Cancel a session" ----------------------------------------------------------------------------


def test_cancel_fails_queued_jobs_and_lets_the_running_one_finish(alice: ClientProcess) -> None:
    """SPEC S13, S16, J2: queued jobs are cancelled, the running one finishes; cancelling again is harmless."""
    output = run(
        alice,
        """
        backend = service.backend("fake_slow")  # one second per job: job1 runs, job2 waits
        with Session(backend=backend) as session:
            estimator = EstimatorV2()
            job1 = estimator.run([(circuit, observable)])
            job2 = estimator.run([(circuit, observable)])
            # You can use session.cancel() to fail all pending jobs, for example,
            # if you realize you made a mistake.
            session.cancel()
            print("status:", session.status())
        for name, job in (("job1", job1), ("job2", job2)):
            try:
                print(f"{name}: evs {job.result()[0].data.evs}")
            except Exception as error:
                print(f"{name}: {type(error).__name__}: {error}")
            print(f"{name} status:", job.status())
        session.cancel()
        print("cancelled twice:", session.status())
        try:
            job1.cancel()
        except Exception as error:
            print("cancelling a finished job:", type(error).__name__, error)
        """,
    )
    assert printed(output, "status:") == "Closed"
    assert printed(output, "job1: evs")
    assert printed(output, "job1 status:") == "DONE"
    assert printed(output, "job2:").startswith("RuntimeInvalidStateError")
    assert printed(output, "job2 status:") == "CANCELLED"
    assert printed(output, "cancelled twice:") == "Closed"
    refusal = printed(output, "cancelling a finished job:")
    assert refusal.startswith("RuntimeInvalidStateError") and "Job cannot be cancelled: '409" in refusal
    assert "has already ended (Completed)" in refusal


# -- "Determine session details" --------------------------------------------------------------------


def test_details(alice: ClientProcess) -> None:
    """SPEC S18: the client's ``details()`` has its keys, with the session's values."""
    output = run(
        alice,
        """
        backend = service.least_busy(operational=True, simulator=False)
        with Session(backend=backend) as session:  # the guide: Session(service=service, backend="backend")
            estimator = EstimatorV2()
            job = estimator.run([(circuit, observable)])
            print("right away:", session.details())
            job.result()
            print("after the job:", session.details())
            print("session id:", session.session_id)
        """,
    )
    first = ast.literal_eval(printed(output, "right away:"))
    details = ast.literal_eval(printed(output, "after the job:"))
    assert set(first) == set(details) == DETAILS_KEYS
    assert details["id"] == printed(output, "session id:")
    assert details["backend_name"] == "fake_quick"
    assert details["interactive_timeout"] == 2.0
    assert details["max_time"] == 8 * 3600.0
    assert 0 < details["active_timeout"] < 8 * 3600.0
    assert (details["state"], details["accepting_jobs"], details["mode"]) == ("active", True, "dedicated")
    for key in ("started_at", "activated_at", "last_job_started", "last_job_completed"):
        assert ISO.fullmatch(details[key]), key
    assert details["closed_at"] is None
    assert details["usage_time"] > 0
    assert [stamp["status"] for stamp in details["timestamps"]] == ["open", "active"]


# -- jobs, batches, handles ------------------------------------------------------------------------


def test_batch_jobs_listing_and_from_id(alice: ClientProcess) -> None:
    """SPEC J1, S2: ``Batch``; ``service.jobs(session_id=...)``; ``service.job(id)``; ``Session.from_id``."""
    output = run(
        alice,
        """
        backend = service.least_busy(operational=True, simulator=False)
        with Batch(backend=backend) as batch:
            sampler = SamplerV2(mode=batch)
            jobs = [sampler.run([(sampler_circuit,)]) for _ in range(3)]
            print("batch mode:", batch.details()["mode"])
        print("all done:", [sorted(job.result()[0].data.meas.get_counts()) for job in jobs])
        listed = [job.job_id() for job in service.jobs(session_id=batch.session_id)]
        print("listed newest first:", listed == [job.job_id() for job in reversed(jobs)])
        again = service.job(jobs[0].job_id())
        print("fetched:", again.status(), again.session_id == batch.session_id, again.primitive_id)
        print("created:", again.creation_date is not None)
        print("batch from_id:", Batch.from_id(batch.session_id, service).status())

        with Session(backend=backend) as session:
            SamplerV2().run([(sampler_circuit,)]).result()
            same = Session.from_id(session.session_id, service)
            print("from_id status:", same.status())
            job = SamplerV2(mode=same).run([(sampler_circuit,)])
            print("from_id job:", job.session_id == session.session_id, sorted(job.result()[0].data.meas.get_counts()))
        """,
    )
    assert printed(output, "batch mode:") == "batch"
    assert ast.literal_eval(printed(output, "all done:")) == [["00", "11"]] * 3
    assert printed(output, "listed newest first:") == "True"
    assert printed(output, "fetched:") == "DONE True sampler"
    assert printed(output, "created:") == "True"
    assert printed(output, "batch from_id:") == "Closed"
    assert printed(output, "from_id status:") == "In progress, accepting new jobs"
    assert printed(output, "from_id job:") == "True ['00', '11']"


def test_job_mode_and_simulators(alice: ClientProcess) -> None:
    """SPEC P3, S11: a backend as the mode runs in job mode; on a simulator the client itself opens no session."""
    output = run(
        alice,
        """
        backend = service.least_busy(operational=True, simulator=False)
        job = SamplerV2(mode=backend).run([(sampler_circuit,)])
        print("job mode session:", job.session_id)
        print("job mode counts:", sorted(job.result()[0].data.meas.get_counts()))
        simulator = service.least_busy(operational=True, simulator=True)
        with Session(backend=simulator) as session:
            job = SamplerV2().run([(sampler_circuit,)])
            print("simulator session:", session.session_id, job.session_id)
            print("simulator counts:", sorted(job.result()[0].data.meas.get_counts()))
        """,
    )
    assert printed(output, "job mode session:") == "None"
    assert printed(output, "job mode counts:") == "['00', '11']"
    assert printed(output, "simulator session:") == "None None"
    assert printed(output, "simulator counts:") == "['00', '11']"


def test_tenants_are_isolated(server: IbmServer, alice: ClientProcess, tmp_path: Path) -> None:
    """Another tenant's client sees none of alice's sessions and jobs: the same answer as for unknown ids."""
    output = run(
        alice,
        """
        with Session(backend=service.least_busy(operational=True, simulator=False)) as session:
            job = SamplerV2().run([(sampler_circuit,)])
            job.result()
        print("ids:", session.session_id, job.job_id())
        """,
    )
    session_id, job_id = printed(output, "ids:").split()
    bob = ClientProcess(server.client_environment(BOB), tmp_path / "bob.log")
    try:
        seen = run(
            bob,
            f"""
            for name, look in (
                ("session", lambda: Session.from_id({session_id!r}, service)),
                ("job", lambda: service.job({job_id!r})),
            ):
                try:
                    look()
                    print(name, "visible")
                except Exception as error:
                    print(name, "hidden:", type(error).__name__)
            print("bob's jobs:", service.jobs())
            print("bob's backends:", len(service.backends()))
            """,
        )
    finally:
        bob.stop()
    assert printed(seen, "session hidden:") == "IBMInputValueError"
    assert printed(seen, "job hidden:") == "RuntimeJobNotFound"
    assert printed(seen, "bob's jobs:") == "[]"
    assert printed(seen, "bob's backends:") == "5"


def test_an_unknown_api_key_is_refused(alice: ClientProcess) -> None:
    """A key that is no tenant's token gets no access token, and the client says why, at construction.

    The client looks the key's instances up first (IBM Cloud's Global Search, which the server
    answers): that call is refused, so ``QiskitRuntimeService`` raises with the server's reason
    as the cause. Only the constructor runs: after a failed token call, qiskit-ibm-runtime's IAM
    token manager waits 60 s before it tries again, whatever the server.
    """
    output = run(
        alice,
        """
        import os
        from qiskit_ibm_runtime.accounts.exceptions import InvalidAccountError

        try:
            QiskitRuntimeService(
                channel="ibm_quantum_platform",
                token="not-a-tenant-token",
                url=os.environ["QISKIT_IBM_URL"],
                instance=os.environ["QISKIT_IBM_INSTANCE"],
            )
        except InvalidAccountError as error:
            print("refused:", error.message, "because:", error.__cause__)
        """,
    )
    refused = printed(output, "refused:")
    assert "Please check that you are using a valid API token" in refused
    assert "the API key is not the token of any tenant of this qmux server" in refused


# -- beyond the guide: what qiskit-ibm-runtime's integration suite checks (`make ibm-suite`) -------


def test_executor_sampler_in_a_session_on_a_device_like_backend(alice: ClientProcess) -> None:
    """The client's new executor-based Sampler, in a session, on a heavy-hex QPU: transpiled, laid out, sampled."""
    output = run(
        alice,
        """
        from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager
        from qiskit_ibm_runtime.executor_sampler import Sampler

        backend = service.backend("fake_hex")
        print("calibrated:", backend.properties() is not None and backend.target.qubit_properties[0].t1 > 0)
        print("coupled:", sorted(backend.target.build_coupling_map().get_edges())[:3])
        isa = generate_preset_pass_manager(target=backend.target, optimization_level=1).run(sampler_circuit)
        with Session(backend=backend) as session:
            result = Sampler(session).run([isa], shots=200).result()
            print("counts:", result[0].join_data().get_counts())
            print("session:", session.session_id == Sampler(session).run([isa], shots=10).session_id)
        """,
    )
    assert printed(output, "calibrated:") == "True"
    assert printed(output, "coupled:") == "[(0, 1), (0, 5), (1, 0)]"
    counts = ast.literal_eval(printed(output, "counts:"))
    assert set(counts) <= {"00", "11"} and sum(counts.values()) == 200
    assert printed(output, "session:") == "True"


def test_job_records_inputs_metrics_tags_and_delete(alice: ClientProcess) -> None:
    """``job.inputs``, ``job.metrics()``, ``job.usage()``, ``job.update_tags``, ``service.delete_job``."""
    output = run(
        alice,
        """
        from qiskit_ibm_runtime.exceptions import RuntimeJobNotFound

        backend = service.backend("fake_quick")
        job = SamplerV2(mode=backend).run([sampler_circuit], shots=7)
        job.result()
        print("inputs:", job.inputs["pubs"][0][2], job.inputs["pubs"][0][0] == sampler_circuit)
        print("metrics:", sorted(job.metrics()), job.usage() > 0)
        print("ran on:", job.metrics()["qiskit_version"].split(",")[0])
        print("tags:", job.update_tags(["x", "y"]) == ["x", "y"] or sorted(job.update_tags(["x", "y"])))
        service.delete_job(job.job_id())
        try:
            service.job(job.job_id())
        except RuntimeJobNotFound:
            print("deleted: yes")
        """,
    )
    assert printed(output, "inputs:") == "7 True"
    assert printed(output, "metrics:") == "['attempts', 'qiskit_version', 'queue_seconds', 'timestamps', 'usage'] True"
    assert printed(output, "ran on:") == f"qmux-{qmux.__version__}"
    assert printed(output, "tags:") in ("True", "['x', 'y']")
    assert printed(output, "deleted:") == "yes"
