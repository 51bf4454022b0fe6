"""``make ibm-suite``: qiskit-ibm-runtime's own integration suite, run against ``qmux serve --ibm-compat``.

qiskit-ibm-runtime ships its integration tests in its sdist; they run against IBM's cloud with
an API key, a URL, an instance and a QPU name in the environment. This script points them at
a real ``qmux serve --ibm-compat`` instead, the way a new user would point their own code:

1. download the sdist of the pinned release (``pip download --no-deps --no-binary :all:``) into
   ``.cache/ibm-suite/`` (gitignored) and extract its ``test/`` tree and ``pyproject.toml``
   (pytest's markers), once;
2. start ``python -m qmux serve --ibm-compat`` on a free port with `CONFIG`: backends named as
   the suite expects (``test_eagle*`` for its ``backend_test`` fixture, ``alt_fez`` and
   ``ibm_miami`` with fractional gates, ``ibm_sherbrooke``, the ``ibm_fez``/``mock_fez`` pair,
   a simulator), 12-qubit QPUs taking 0.2 to 2.5 s per job;
3. run ``pytest test/integration`` with the environment the server printed plus
   ``QISKIT_IBM_QPU``, a per-test timeout (pytest-timeout) and an overall bound, in a scratch
   ``HOME`` (some tests save accounts);
4. print a table of results per file, then every test that did not pass with its reason, and
   whether it is one `LEFT_OUT` lists (tests that need IBM Cloud itself, with why).

The exit status is 0 when every failure is one `LEFT_OUT` explains, 1 otherwise (2: the run
could not be made). Not part of ``make test`` or CI: it takes minutes (see the README).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

ROOT: Final = Path(__file__).resolve().parents[1]
CACHE: Final = ROOT / ".cache" / "ibm-suite"
#: the client release whose suite runs; the same one the dev extra pins
RELEASE: Final = "0.51.0"
SDIST: Final = f"qiskit_ibm_runtime-{RELEASE}"
#: the backend the suite's QPU tests use (``QISKIT_IBM_QPU``); without fractional gates
QPU: Final = "ibm_fez"

#: the server's configuration. The token is filled in per run.
CONFIG: Final = """
[server]
host = "127.0.0.1"
port = 0

[service]
shutdown_grace = 2.0

[[tenants]]
name = "suite"
token = "{token}"

# the suite's `backend_test` fixture takes the first backend named test_eagle*; its jobs run
# long enough to be seen QUEUED and RUNNING, and to be cancelled while they run
[backends.test_eagle_r3]
num_qubits = 12
coupling_map = "heavy_hex"
fractional_gates = false
job_seconds = 2.5
seed = 1

# QISKIT_IBM_QPU, and the real device of the mock_fez pair
[backends.ibm_fez]
num_qubits = 12
coupling_map = "heavy_hex"
fractional_gates = false
job_seconds = 0.2
seed = 2

[backends.mock_fez]
num_qubits = 12
coupling_map = "heavy_hex"
fractional_gates = false
job_seconds = 0.2
mock = true
seed = 2

# devices that offer fractional gates (rx, rzz), by the names the suite looks up
[backends.alt_fez]
num_qubits = 12
coupling_map = "heavy_hex"
fractional_gates = true
job_seconds = 0.5
seed = 3

[backends.ibm_miami]
num_qubits = 12
coupling_map = "heavy_hex"
fractional_gates = true
job_seconds = 0.5
seed = 4

[backends.ibm_sherbrooke]
num_qubits = 12
coupling_map = "heavy_hex"
fractional_gates = false
job_seconds = 0.5
seed = 5

[backends.suite_simulator]
num_qubits = 12
simulator = true
concurrency = 4
"""

#: tests that cannot pass against a server on the loopback, and why; matched on the test's
#: node id without its parameters ("file.py::Class::test")
_IAM_HOST = (
    "the client sends this call to IBM Cloud IAM at iam.<host of QISKIT_IBM_URL> (it ignores IAM_URL here), "
    "which no local server can be"
)
_NOISE_LEARNER = (
    "program 'noise-learner' is IBM's learning service, run on IBM's side (its NoiseLearner and server-side "
    "NoiseLearnerV3); it is not simulated. The client-side NoiseLearnerV3 (test_executor_noise_learner.py), "
    "which learns through program 'executor', runs and passes"
)
LEFT_OUT: Final[dict[str, str]] = {
    "test_account.py::TestQuantumPlatform::test_account_preferences_tags": _IAM_HOST,
    "test_account.py::TestQuantumPlatform::test_passing_name_as_instance": _IAM_HOST
    + " (resolving an instance name goes to IBM Cloud's Resource Controller)",
    "test_session.py::TestIntegrationSession::test_session_instance_logic": _IAM_HOST
    + " (resolving an instance name goes to IBM Cloud's Resource Controller)",
    "test_account.py::TestQuantumPlatform::test_jobs_before_backend": (
        "expects the account to have jobs before any test submitted one (its file runs first): an IBM account's "
        "history, not a server behaviour"
    ),
    "test_account.py::TestQuantumPlatform::test_service_usage": (
        "expects a plan's allowance (usage_remaining_seconds); a qmux server has no usage quota to report"
    ),
    "test_backend.py::TestIBMBackend::test_backend_fractional_gates_cache_behavior": (
        "asserts that two service.backend() calls return the same object; the 0.51 client builds a new "
        "IBMBackend on every call, whatever the server answers"
    ),
    "test_noise_learner.py::TestIntegrationNoiseLearner::test_learner_plus_estimator": _NOISE_LEARNER,
    "test_noise_learner.py::TestIntegrationNoiseLearner::test_with_default_options": _NOISE_LEARNER,
    "test_noise_learner.py::TestIntegrationNoiseLearner::test_with_no_layers": _NOISE_LEARNER,
    "test_noise_learner.py::TestIntegrationNoiseLearner::test_with_non_default_options": _NOISE_LEARNER,
    "test_noise_learner_v3.py::TestNoiseLearnerV3::test_noise_learner_v3": _NOISE_LEARNER,
    "test_proxies.py::TestProxies::test_proxies_cloud_runtime_client": (
        "its proxies are for https only and the local server is http: the client never uses them"
    ),
    "test_proxies.py::TestProxies::test_proxies_qiskit_runtime_service": (
        "its proxies are for https only and the local server is http: the client never uses them"
    ),
}


@dataclass(frozen=True)
class Outcome:
    """One test's result, from pytest's JUnit XML."""

    file: str
    node: str
    status: str  # passed, failed, error, skipped
    seconds: float
    reason: str

    @property
    def key(self) -> str:
        """The node id without parameters, as `LEFT_OUT` names tests."""
        return self.node.partition("[")[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("-k", dest="keyword", help="run only the tests that match (pytest -k)")
    parser.add_argument("-x", dest="exitfirst", action="store_true", help="stop at the first failure (pytest -x)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per test (default 180)")
    parser.add_argument("--budget", type=float, default=2400.0, help="seconds for the whole run (default 2400)")
    parser.add_argument("--fresh", action="store_true", help="download and extract the suite again")
    parser.add_argument("paths", nargs="*", help="test files or node ids under test/integration (default: all)")
    args = parser.parse_args(argv)
    try:
        suite = fetch_suite(fresh=args.fresh)
    except (OSError, subprocess.CalledProcessError, tarfile.TarError) as exc:
        print(f"ibm-suite: could not get qiskit-ibm-runtime {RELEASE}'s tests: {exc}", file=sys.stderr)
        return 2
    run_dir = CACHE / "last-run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    token = secrets.token_urlsafe(24)
    config = run_dir / "qmux.toml"
    config.write_text(CONFIG.format(token=token))
    started = time.monotonic()
    with qmux_server(config, run_dir / "server.log") as environment:
        environment = {**environment, "QISKIT_IBM_TOKEN": token, "QISKIT_IBM_QPU": QPU}
        print("ibm-suite: the suite's environment:")
        for name, value in sorted(environment.items()):
            shown = "<the tenant's token>" if name == "QISKIT_IBM_TOKEN" else shlex.quote(value)
            print(f"  {name}={shown}")
        junit = run_dir / "results.xml"
        pytest_args = [f"--timeout={args.timeout:g}", f"--junitxml={junit}", "-p", "no:qmux", "-p", "no:cacheprovider"]
        if args.keyword:
            pytest_args += ["-k", args.keyword]
        if args.exitfirst:
            pytest_args.append("-x")
        targets = [f"test/integration/{path.removeprefix('test/integration/')}" for path in args.paths]
        code = run_pytest(suite, environment, pytest_args + (targets or ["test/integration"]), run_dir, args.budget)
    elapsed = time.monotonic() - started
    if not junit.exists():
        print(f"ibm-suite: pytest wrote no results (exit status {code}); see {run_dir}", file=sys.stderr)
        return 2
    outcomes = read_junit(junit)
    print(report(outcomes, elapsed))
    print(f"\nlogs: {run_dir}/pytest.log, {run_dir}/server.log")
    unexplained = [o for o in outcomes if o.status in ("failed", "error") and o.key not in LEFT_OUT]
    return 1 if unexplained or code not in (0, 1) else 0


# -- the suite ---------------------------------------------------------------------------------------


def fetch_suite(*, fresh: bool) -> Path:
    """The extracted sdist (``test/`` and ``pyproject.toml`` only), downloaded once into the cache."""
    extracted = CACHE / SDIST
    if fresh:
        shutil.rmtree(extracted, ignore_errors=True)
    if (extracted / "test" / "integration").is_dir():
        return extracted
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"{SDIST}.tar.gz"
    if fresh or not archive.exists():
        print(f"ibm-suite: downloading qiskit-ibm-runtime {RELEASE}'s sdist into {CACHE}")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"qiskit-ibm-runtime=={RELEASE}",
                "--dest",
                str(CACHE),
            ],
            check=True,
        )
    wanted = (f"{SDIST}/test/", f"{SDIST}/pyproject.toml")
    with tarfile.open(archive) as tar, tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        members = [m for m in tar.getmembers() if m.name.startswith(wanted) or m.name in wanted]
        tar.extractall(scratch, members=members, filter="data")
        shutil.rmtree(extracted, ignore_errors=True)
        (Path(scratch) / SDIST).rename(extracted)
    return extracted


# -- the server ----------------------------------------------------------------------------------------


@contextmanager
def qmux_server(config: Path, log: Path, *, timeout: float = 90.0) -> Iterator[dict[str, str]]:
    """``qmux serve --ibm-compat`` on a free port; yields the environment its ``export`` lines set."""
    from qmux.ibm import client_environment

    wanted = set(client_environment("http://127.0.0.1:1", "token")) - {"QISKIT_IBM_TOKEN"}
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "qmux", "serve", "--ibm-compat", "--config", str(config), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            cwd=ROOT,
        )
        try:
            assert process.stdout is not None
            environment = _read_exports(process.stdout, wanted, time.monotonic() + timeout)
            print(f"ibm-suite: qmux serving on {environment['IAM_URL']}")
            yield environment
        finally:
            _stop(process)


def _read_exports(stdout: IO[str], wanted: set[str], deadline: float) -> dict[str, str]:
    environment: dict[str, str] = {}
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(_lines_until(stdout, wanted, environment)), daemon=True)
    reader.start()
    reader.join(max(0.0, deadline - time.monotonic()))
    missing = wanted - set(environment)
    if missing:
        raise RuntimeError(f"qmux serve printed no export for {sorted(missing)}; it printed: {lines}")
    # keep draining stdout, so that the server never blocks on a full pipe
    threading.Thread(target=lambda: [None for _ in stdout], daemon=True).start()
    return environment


def _lines_until(stdout: IO[str], wanted: set[str], environment: dict[str, str]) -> Iterator[str]:
    for line in stdout:
        yield line
        if line.startswith("export "):
            name, _, value = shlex.split(line)[1].partition("=")
            environment[name] = value
        if wanted <= set(environment):
            return


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# -- pytest ----------------------------------------------------------------------------------------------


def run_pytest(suite: Path, environment: dict[str, str], args: list[str], run_dir: Path, budget: float) -> int:
    """Run pytest in the extracted sdist, bounded by `budget` seconds; its exit status (124: out of time)."""
    home = run_dir / "home"
    home.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("QISKIT_", "IAM_URL", "GLOBAL_"))},
        **environment,
        "HOME": str(home),  # tests that save accounts write ~/.qiskit here, not in the user's home
        # the suite starts a proxy (pproxy) by name: this interpreter's scripts come first
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    command = [sys.executable, "-m", "pytest", "-q", "-rN", "--no-header", *args]
    print(f"ibm-suite: {' '.join(shlex.quote(part) for part in command)}  (in {suite})", flush=True)
    with (run_dir / "pytest.log").open("w") as log:
        process = subprocess.Popen(
            command,
            cwd=suite,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert process.stdout is not None
        tee = threading.Thread(target=_tee, args=(process.stdout, log), daemon=True)
        tee.start()
        try:
            return process.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            print(f"\nibm-suite: the run took more than {budget:g} s; stopping it", flush=True)
            os.killpg(process.pid, signal.SIGINT)  # pytest writes its JUnit file on interrupt
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            return 124
        finally:
            tee.join(timeout=10)


def _tee(source: IO[str], log: IO[str]) -> None:
    """Progress dots to the terminal, everything to the log."""
    for line in source:
        log.write(line)
        if line[:1] in ".FEsx" and set(line.split(" ")[0]) <= set(".FEsxX"):
            sys.stdout.write(line)
            sys.stdout.flush()


def read_junit(path: Path) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for case in ET.parse(path).getroot().iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        parts = classname.split(".") if classname else name.removesuffix(".py").split("/")
        # "test.integration.test_job.TestJob" -> test_job.py::TestJob; a collection error names the file
        modules = [i for i, part in enumerate(parts) if part.startswith("test_")]
        if not modules:
            file = node = name
        else:
            file = f"{parts[modules[-1]]}.py"
            node = "::".join([file, *parts[modules[-1] + 1 :], *([name] if classname else [])])
        status, reason = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                status = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                reason = _one_line(child.get("message") or child.text or "")
                break
        outcomes.append(Outcome(file, node, status, float(case.get("time", "0")), reason))
    return outcomes


def _one_line(text: str, width: int = 160) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else f"{line[: width - 1]}…"


# -- the report -----------------------------------------------------------------------------------------


def report(outcomes: list[Outcome], elapsed: float) -> str:
    by_file: dict[str, Counter[str]] = defaultdict(Counter)
    for outcome in outcomes:
        by_file[outcome.file][outcome.status] += 1
    columns = ("passed", "failed", "error", "skipped")
    width = max([len(file) for file in by_file] + [len("total")])
    lines = ["", f"{'file':<{width}}  " + "  ".join(f"{c:>7}" for c in columns)]
    total: Counter[str] = Counter()
    for file in sorted(by_file):
        total.update(by_file[file])
        lines.append(f"{file:<{width}}  " + "  ".join(f"{by_file[file][c]:>7}" for c in columns))
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{total[c]:>7}" for c in columns))
    not_passed = [o for o in outcomes if o.status != "passed"]
    if not_passed:
        lines += ["", "not passed (LEFT OUT: cannot pass against a local server, with why; FAIL: a qmux gap):"]
        for outcome in sorted(not_passed, key=lambda o: (o.status == "skipped", o.node)):
            if outcome.status == "skipped":
                tag, why = "skipped", outcome.reason
            elif outcome.key in LEFT_OUT:
                tag, why = "LEFT OUT", f"{LEFT_OUT[outcome.key]} [{outcome.reason}]"
            else:
                tag, why = "FAIL", outcome.reason
            lines.append(f"  {tag:<8} {outcome.node}\n           {why}")
    unexplained = sum(1 for o in not_passed if o.status != "skipped" and o.key not in LEFT_OUT)
    left_out = sum(1 for o in not_passed if o.status != "skipped" and o.key in LEFT_OUT)
    lines += [
        "",
        f"{total['failed'] + total['error']} failed, {total['passed']} passed, {total['skipped']} skipped "
        f"in {elapsed:.0f} s: {left_out} left out (need IBM Cloud itself), {unexplained} unexplained",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
