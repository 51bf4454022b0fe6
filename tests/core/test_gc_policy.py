"""``ServiceSettings.gc``: the collector on the service's terms, and how services in one process share it.

``gc="freeze"`` (opt-in) freezes what start-up allocated and raises the collector's
thresholds while the service runs; the last service to stop puts the process back as it found
it. These tests read the interpreter's collector state (`gc.get_freeze_count`,
`gc.get_threshold`), which is process-wide: each leaves it as it was.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest
import trio

import qmux
from qmux._core import _gc_policy
from qmux.testing import ScriptedBackend

Clock = trio.testing.MockClock

generational = pytest.mark.skipif(
    sys.version_info >= (3, 14), reason="Python 3.14's incremental collector: the policy sets no thresholds there"
)


@pytest.fixture(autouse=True)
def collector_as_found() -> Iterator[None]:
    """Each test starts with nothing frozen and the usual thresholds, and leaves them so."""
    thresholds = gc.get_threshold()
    assert gc.get_freeze_count() == 0, "another test left objects frozen"
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def tracked(obj: object) -> bool:
    """Whether the collector's scans visit `obj` (frozen objects are not among `gc.get_objects()`)."""
    return any(candidate is obj for candidate in gc.get_objects())


@generational
async def test_freeze_takes_what_start_up_allocated_out_of_the_scans_until_the_service_stops(
    autojump_clock: Clock,
) -> None:
    backend = ScriptedBackend("q")
    thresholds = gc.get_threshold()
    assert tracked(backend)
    async with qmux.open_service([backend], settings=qmux.ServiceSettings(gc="freeze")) as running:
        assert gc.get_freeze_count() > 0 and not tracked(backend)
        assert gc.get_threshold() == _gc_policy.THRESHOLDS  # the suite runs with Python's own thresholds
        session = qmux.Session(service=running, backend="q")
        job = await session.run("echo", "works")
        await job.result()  # the service works as ever
        assert tracked(session)  # opened after start-up: scanned as usual
        await session.close()
    assert gc.get_freeze_count() == 0 and tracked(backend)
    assert gc.get_threshold() == thresholds


async def test_default_leaves_the_collector_alone(autojump_clock: Clock) -> None:
    backend = ScriptedBackend("q")
    thresholds = gc.get_threshold()
    async with qmux.open_service([backend], settings=qmux.ServiceSettings(gc="default")):
        assert gc.get_freeze_count() == 0 and tracked(backend)
        assert gc.get_threshold() == thresholds


@generational
async def test_services_in_one_process_share_the_policy_until_the_last_stops(autojump_clock: Clock) -> None:
    first, second = ScriptedBackend("a"), ScriptedBackend("b")
    thresholds = gc.get_threshold()
    async with qmux.open_service([first], settings=qmux.ServiceSettings(gc="freeze")):
        async with qmux.open_service([second], settings=qmux.ServiceSettings(gc="freeze")):
            assert not tracked(first) and not tracked(second)  # each froze its own start-up state
        assert not tracked(first)  # the first service still runs: its state stays out of the scans
        assert gc.get_threshold() != thresholds
    assert tracked(first) and tracked(second) and gc.get_threshold() == thresholds


async def test_objects_frozen_by_the_application_stay_frozen(autojump_clock: Clock) -> None:
    mine = [[]]  # a container: tracked until frozen
    gc.freeze()
    async with qmux.open_service([ScriptedBackend("q")], settings=qmux.ServiceSettings(gc="freeze")):
        pass
    assert gc.get_freeze_count() > 0 and not tracked(mine)  # as the application left it


@generational
@pytest.mark.parametrize(
    "chosen",
    [
        (100_000, 50, 1000),  # an application's tuning
        (500, 10, 10),
        (0, 10, 10),  # automatic collection turned off: kept off
    ],
)
async def test_thresholds_someone_chose_are_left_alone(autojump_clock: Clock, chosen: tuple[int, int, int]) -> None:
    gc.set_threshold(*chosen)
    async with qmux.open_service([ScriptedBackend("q")], settings=qmux.ServiceSettings(gc="freeze")):
        assert gc.get_threshold() == chosen
        assert gc.get_freeze_count() > 0  # the freeze applies all the same
    assert gc.get_threshold() == chosen


async def test_the_policy_is_undone_when_the_service_fails(autojump_clock: Clock) -> None:
    with pytest.raises(RuntimeError, match="the application failed"):
        async with qmux.open_service([ScriptedBackend("q")], settings=qmux.ServiceSettings(gc="freeze")):
            assert gc.get_freeze_count() > 0
            raise RuntimeError("the application failed")
    assert gc.get_freeze_count() == 0


def test_an_unknown_policy_is_refused_with_the_choices() -> None:
    with pytest.raises(qmux.InvalidInputError, match="""gc='off' must be 'freeze' or 'default'"""):
        qmux.ServiceSettings(gc="off")
