"""The ``qmux`` pytest plugin as a user meets it: test files run by pytester in a directory of their
own (no qmux conftest, no ``trio_mode``), with the plugin loaded from its entry point."""

from __future__ import annotations

import textwrap

import pytest

import qmux.testing._plugin
import qmux.testing._services

FIXTURES = {
    "qmux_backends": "The backends the ``qmux_*`` service fixtures serve",
    "qmux_settings": "The ``qmux.ServiceSettings`` of the ``qmux_*`` service fixtures",
    "qmux_service": "A qmux service in process, on Trio's virtual clock",
    "qmux_remote_service": "The same service as ``qmux_service``, reached as a client reaches it",
    "qmux_service_factory": "``async with qmux_service_factory(backends, settings) as service``",
    "qmux_any_service": "A service on ``qmux_backends`` and virtual time, reached both ways",
}

USER_TESTS = """
import pytest
import trio
import trio.testing

import qmux
from qmux.testing import job, qpu

pytestmark = pytest.mark.trio


@pytest.fixture
def qmux_backends():
    return [qpu("mine", interactive_ttl=3)]


@pytest.fixture
def qmux_settings():
    return qmux.ServiceSettings(max_queued_jobs_per_session=1)


async def test_local(autojump_clock, qmux_service):
    assert isinstance(qmux_service, qmux.Service)
    assert [b.name for b in qmux_service.backends()] == ["mine"]
    result = await (await qmux_service.backend("mine").run("x", job(3600, value=1))).result()
    assert result == 1 and trio.current_time() == 3600  # an hour of virtual time


async def test_remote_is_the_same_service(autojump_clock, qmux_service, qmux_remote_service):
    assert isinstance(qmux_remote_service, qmux.RemoteService)
    remote_job = await qmux_remote_service.backend("mine").run("x", job(5, value=2))
    assert await (await qmux_service.job(remote_job.job_id)).result() == 2
    assert qmux_service.job_owner(remote_job.job_id) == "qmux-testing"


async def test_both_ways(autojump_clock, qmux_any_service):
    session = qmux.Session(service=qmux_any_service, backend="mine")
    await session.run("x", job(10))  # runs
    await session.run("x", job(10))  # waits in the session's queue, now full
    with pytest.raises(qmux.CapacityError):  # qmux_settings applies both ways
        await session.run("x", job(10))
    await session.cancel()


async def test_factory(autojump_clock, qmux_service_factory, request):
    async with qmux_service_factory([qpu("other")]) as service:
        assert [b.name for b in service.backends()] == ["other"]
        kind = request.node.callspec.id
        assert isinstance(service, qmux.Service if kind == "local" else qmux.RemoteService)
"""


def test_pytest_fixtures_lists_every_fixture_with_its_docstring(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*fixtures defined from qmux.testing._plugin*"])
    for name, doc in FIXTURES.items():
        result.stdout.fnmatch_lines([f"{name} -- *qmux/testing/_plugin.py:*", f"    {doc}*"])


def test_a_users_file_runs_with_plain_pytest_both_ways(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-v", "-W", "error")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines_random(
        [
            "*::test_local PASSED*",
            "*::test_remote_is_the_same_service PASSED*",
            "*::test_both_ways?local? PASSED*",
            "*::test_both_ways?remote? PASSED*",
            "*::test_factory?local? PASSED*",
            "*::test_factory?remote? PASSED*",
        ]
    )


@pytest.mark.parametrize("fixture", ["qmux_service", "qmux_remote_service", "qmux_any_service"])
def test_a_running_service_without_the_virtual_clock_fails_saying_what_to_add(
    pytester: pytest.Pytester, fixture: str
) -> None:
    pytester.makepyfile(
        test_user=f"""
        import pytest

        @pytest.mark.trio
        async def test_forgot_the_clock({fixture}):
            pass
        """
    )
    result = pytester.runpytest()
    assert result.parseoutcomes().get("passed", 0) == 0
    result.stdout.fnmatch_lines(["*runs on Trio's virtual clock: add pytest-trio's `autojump_clock` fixture*"])


def test_remote_fixtures_skip_with_a_clear_reason_without_the_server_extra(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qmux.testing._services, "_SERVER_NEEDS", ("msgspec", "qmux_no_such_module"))
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=3, skipped=3)
    result.stdout.fnmatch_lines(
        [
            "*qmux_remote_service needs the server extra (qmux_no_such_module not installed): "
            "pip install 'qmux?server?'",
        ]
    )
    result.stdout.fnmatch_lines(["*qmux_service_factory?remote? needs the server extra*"])


NOT_USING_QMUX = """
import pytest
import trio
import trio.lowlevel
import trio.testing


def test_sync(request):
    assert request.fixturenames == ["request"]  # no autouse fixture was added


@pytest.mark.trio
async def test_trio_on_the_real_clock(request):
    assert request.fixturenames == ["request"]
    assert not isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock)
    assert request.config.getini("trio_mode") is False  # pytest-trio's settings are its own


async def test_not_marked_is_not_run_as_trio():
    pass
"""


@pytest.mark.parametrize("plugin", [[], ["-p", "no:qmux"]], ids=["loaded", "unloaded"])
def test_a_test_that_uses_no_qmux_fixture_is_unaffected(pytester: pytest.Pytester, plugin: list[str]) -> None:
    pytester.makepyfile(test_plain=NOT_USING_QMUX)
    result = pytester.runpytest(*plugin)
    # the same outcomes with and without the plugin: an unmarked async test is pytest's to refuse
    result.assert_outcomes(passed=2, failed=1)


def test_the_plugin_defines_fixtures_only() -> None:
    names = vars(qmux.testing._plugin)
    assert not [name for name in names if name.startswith("pytest_")]  # no hook, no option
    fixtures = [name for name in names if name.startswith("qmux_")]
    assert sorted(fixtures) == sorted(FIXTURES)


def test_loading_the_plugin_imports_neither_qiskit_nor_the_http_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_modules=textwrap.dedent(
            """
            import sys

            def test_modules(pytestconfig):
                assert pytestconfig.pluginmanager.hasplugin("qmux")
                heavy = {"qiskit", "hypercorn", "msgspec", "qmux.server", "numpy"}
                assert heavy.isdisjoint(sys.modules), heavy & set(sys.modules)
            """
        )
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
