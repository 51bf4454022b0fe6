"""structlog events at every state change, bound to session and job ids; no configuration."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest
import structlog
import trio
import trio.testing

import qmux
from qmux.testing import job, qpu


async def test_state_changes_are_logged_with_their_ids(autojump_clock: trio.testing.MockClock) -> None:
    with structlog.testing.capture_logs() as logs:
        async with qmux.open_service([qpu("a", interactive_ttl=5)]) as service:
            session = qmux.Session(service=service, backend="a")
            first = await session.run("script", job(1))
            await first.result()
            await trio.sleep(6)
            broken = await session.run("script", job(1, fail="boom"))
            await trio.sleep(2)
            await session.close()
    events = [(e["event"], e.get("session_id"), e.get("job_id")) for e in logs]
    sid = session.session_id
    for expected in [
        ("session.opened", sid, None),
        ("job.queued", sid, first.job_id),
        ("session.activated", sid, None),
        ("session.started", sid, None),
        ("job.started", sid, first.job_id),
        ("job.done", sid, first.job_id),
        ("session.deactivated", sid, None),
        ("job.failed", sid, broken.job_id),
        ("session.closed", sid, None),
    ]:
        assert expected in events, expected
    assert all(e.get("backend") == "a" for e in logs if e["event"].startswith(("session.", "job.")))


def test_importing_qmux_configures_no_logging() -> None:
    probe = (
        "import logging, structlog; before = structlog.get_config(); import qmux; "
        "assert structlog.get_config() == before; assert logging.getLogger().handlers == []"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)


@pytest.fixture
def stdlib_structlog() -> Iterator[None]:
    """structlog over the standard library's logging, whose levels can change at any time."""
    structlog.configure(
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        processors=[structlog.processors.KeyValueRenderer(key_order=["event"])],
    )
    try:
        yield
    finally:
        structlog.reset_defaults()


async def test_per_job_debug_events_follow_a_stdlib_level_lowered_while_the_service_runs(
    autojump_clock: trio.testing.MockClock, stdlib_structlog: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Per-job debug events are skipped only for loggers whose level is fixed (structlog's filtering
    ones); a stdlib logger set to DEBUG after the service started still gets them."""
    caplog.set_level(logging.INFO, logger="qmux")
    async with qmux.open_service([qpu("a")]) as service:
        caplog.set_level(logging.DEBUG, logger="qmux")
        session = qmux.Session(service=service, backend="a")
        done = await session.run("script", job(1))
        await done.result()
        await session.close()
    for event in ("job.queued", "job.started", "job.done"):
        assert f"event='{event}'" in caplog.text, event
