"""Seeing what runs with the real qiskit-ibm-runtime client (SPEC U1, T1): ``job.metrics()``,
``job.usage()``, ``job.update_tags()`` and ``service.jobs(job_tags=...)``, unmodified, against
``qmux serve --ibm-compat`` on 127.0.0.1 (a free port), told nothing but the printed environment.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterator

import pytest

from ..support.ibm import ClientProcess, IbmServer

TOKEN = "carol-token-0123456789"
CONFIG = f"""
[server]
host = "127.0.0.1"
port = 0

[[tenants]]
name = "carol"
token = "{TOKEN}"

[backends.fake_quick]
num_qubits = 127
job_seconds = 0.3
seed = 1234
"""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientProcess]:
    directory = tmp_path_factory.mktemp("ibm-seeing")
    (directory / "qmux.toml").write_text(CONFIG)
    server = IbmServer(directory / "qmux.toml", directory / "server.log")
    try:
        process = ClientProcess(server.client_environment(TOKEN), directory / "client.log")
        try:
            yield process
        finally:
            process.stop()
    finally:
        server.stop()


def test_U1_T1_metrics_usage_and_tags_through_the_real_client(client: ClientProcess) -> None:
    output = client.run(
        textwrap.dedent(
            """
            from qiskit import QuantumCircuit
            from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2

            service = QiskitRuntimeService()
            circuit = QuantumCircuit(2)
            circuit.h(0)
            circuit.cx(0, 1)
            circuit.measure_all()
            sampler = SamplerV2(mode=service.backend("fake_quick"))
            sampler.options.environment.job_tags = ["exp-1"]
            job = sampler.run([circuit])
            job.result()
            metrics = job.metrics()
            print("timestamps:", sorted(metrics["timestamps"]))
            print("quantum seconds:", metrics["usage"]["quantum_seconds"])
            print("usage:", job.usage())
            print("tags after update:", job.update_tags(["exp-2", "kept"]))
            print("found by tag:", [found.job_id() == job.job_id() for found in service.jobs(job_tags=["exp-2"])])
            print("old tag:", service.jobs(job_tags=["exp-1"]))
            """
        )
    )
    lines = dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
    assert ast.literal_eval(lines["timestamps"]) == ["created", "finished", "running"]
    assert float(lines["quantum seconds"]) == pytest.approx(0.3, abs=0.1)
    assert float(lines["usage"]) == pytest.approx(0.3, abs=0.1), "job.usage() reads the final usage"
    assert sorted(ast.literal_eval(lines["tags after update"])) == ["exp-2", "kept"]
    assert ast.literal_eval(lines["found by tag"]) == [True]
    assert lines["old tag"] == "[]"
