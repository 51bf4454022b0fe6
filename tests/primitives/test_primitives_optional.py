"""qiskit is an optional extra: qmux imports without it, and a primitive says how to install it (SPEC P1-P3).

Each check runs in a fresh interpreter, where ``sys.modules["qiskit"] = None`` makes qiskit
unimportable as if it were not installed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

WITHOUT_QISKIT = "import sys\nsys.modules['qiskit'] = None\n"


def run_python(code: str) -> str:
    process = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=False
    )
    assert process.returncode == 0, process.stderr
    return process.stdout


def test_importing_qmux_does_not_import_qiskit() -> None:
    out = run_python(
        """
        import sys
        import qmux, qmux.backends, qmux.primitives
        qmux.backends.default_backends()
        print("qiskit" in sys.modules)
        """
    )
    assert out.strip() == "False"


@pytest.mark.parametrize("primitive", ["Sampler", "Estimator"])
def test_p3_a_primitive_without_qiskit_says_how_to_install_it(primitive: str) -> None:
    out = run_python(
        WITHOUT_QISKIT
        + f"""
import qmux
try:
    qmux.{primitive}()
except qmux.QiskitNotInstalledError as exc:
    print(isinstance(exc, (qmux.QmuxError, ImportError)), exc)
"""
    )
    assert out.startswith("True ")
    assert f"qmux.{primitive} needs qiskit" in out and "pip install 'qmux[qiskit]'" in out


def test_j3_a_sampler_job_on_a_backend_without_qiskit_fails_alone_and_says_why() -> None:
    out = run_python(
        WITHOUT_QISKIT
        + """
import trio, qmux

async def main():
    async with qmux.open_service() as service:
        backend = service.backend("local_simulator")
        job = await backend.run("sampler", {"pubs": []})
        try:
            await job.result()
        except qmux.JobFailedError as exc:
            print(type(exc.__cause__).__name__, exc.__cause__)
        print("echo", await (await backend.run("echo", 1)).result())

trio.run(main)
"""
    )
    assert "QiskitNotInstalledError the 'sampler' program of backend 'local_simulator' needs qiskit" in out
    assert "echo 1" in out
