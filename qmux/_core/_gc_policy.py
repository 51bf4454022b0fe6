"""The service's garbage-collection policy (``ServiceSettings.gc``): the collector on the service's terms.

CPython's cyclic garbage collector stops the event loop while it runs, and a full (oldest
generation) pass visits every object it tracks: with 10,000 sessions and their backends, about
a million, tens of milliseconds during which every deadline that falls due (ITTL, max_time)
waits. ``gc="freeze"`` shortens and thins out those pauses without giving up the collector:

* **It freezes what start-up allocated.** Once the service has started (its backends,
  schedulers and executors, the state recovered from its journal, every module imported so
  far), `gc.freeze` moves every tracked object into the permanent generation, which no
  collection scans. Those objects live as long as the service, so scanning them again and again
  found nothing; reference counting still frees any of them that dies outside a cycle.
* **It raises the collector's thresholds** to `THRESHOLDS`, (2000, 3, 300) instead of
  Python's (700, 10, 10): the youngest generation is collected after 2,000 net allocations (as
  Python 3.13 does), so that fewer short-lived objects (a job's records, a request's buffers)
  are alive at a young collection and promoted; the middle one after 3 young passes instead of
  10, so that each of its passes stays small; and a full pass is considered after 300 middle
  passes instead of 10 (about 25 times as many allocations; CPython also still waits until the
  old generation has grown by a quarter). In the ``objects`` benchmark's steady state (10,000
  sessions, each running a job every 20 s, for 140 s on a mock clock) the policy took the full
  passes from 9 to 0, the largest single pass from 1.1 million objects to 0.11 million, and all
  the collector scanned from 12.5 to 4.2 million. Thresholds someone chose (anything but Python's
  own) are left as they are.

Why freeze only once, at start-up, never periodically: a frozen object that later dies in a
reference cycle is only freed after `gc.unfreeze`. Failed and cancelled jobs leave such cycles
(their error, once raised to a caller, has a traceback whose frames hold the job), so freezing
again later would keep every such job the service had already forgotten, and the application's
own cyclic garbage with it, for good. What exists at start-up is the service's own furniture,
kept for its whole life. The price of the higher thresholds: cyclic garbage among long-lived
objects waits for a full pass, which now comes less often; an application that makes much of it
can keep the default.

The collector's state belongs to the interpreter, not to a service, so services in one process
(a test suite, an application with two) share one policy. The first to start with
``gc="freeze"`` saves the thresholds and sets its own (if they were Python's: an application's
tuning, or automatic collection turned off, is kept); each freezes once it has started,
so that its own start-up state leaves the scans too; the last to stop unfreezes (unless objects
were already frozen, by someone else, when the first started: it leaves the process as it found
it) and puts the thresholds back. Freezing moves list heads, whatever the heap's size. The
first freeze in a process follows a full collection, so that no garbage already waiting is
pinned; later ones follow a young collection only, so that starting a service (as each test
does) costs no full pass. Python 3.14's incremental collector gives thresholds another
meaning: there, only the freeze applies.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

__all__ = ["GC_POLICIES", "THRESHOLDS", "gc_policy"]

_log = structlog.get_logger("qmux")

#: the values of ``ServiceSettings.gc``
GC_POLICIES = ("freeze", "default")
#: ``gc.set_threshold`` while a service with ``gc="freeze"`` runs, if the thresholds were Python's own
THRESHOLDS = (2_000, 3, 300)
#: the thresholds CPython starts with (3.11 and 3.12; 3.13): the policy changes only these
PYTHON_THRESHOLDS = frozenset({(700, 10, 10), (2_000, 10, 10)})
#: where the collector is generational, as the thresholds assume (3.14's is incremental)
_GENERATIONAL = sys.version_info < (3, 14)

_lock = threading.Lock()
#: services running with the freeze policy, in this process
_users = 0
#: the thresholds found when the first of them started, if it changed them
_saved_thresholds: tuple[int, int, int] | None = None
#: whether objects were already frozen (by someone else) when the first of them started
_frozen_before = False
#: whether this process has had its one full collection before a first freeze
_collected_once = False


@contextmanager
def gc_policy(policy: str) -> Iterator[None]:
    """Apply `policy` until the block ends (``"default"``: leave the collector alone).

    Enter it once the service has started; the module's docstring says what ``"freeze"`` does and
    how the services of one process share it.
    """
    if policy != "freeze":
        yield
        return
    _start()
    try:
        yield
    finally:
        _stop()


def _start() -> None:
    global _users, _saved_thresholds, _frozen_before, _collected_once
    with _lock:
        if _users == 0:
            _frozen_before = gc.get_freeze_count() > 0  # a walk of what is frozen: nothing, usually
            before = gc.get_threshold()
            if _GENERATIONAL and before in PYTHON_THRESHOLDS:  # thresholds someone chose are theirs to keep
                _saved_thresholds = before
                gc.set_threshold(*THRESHOLDS)
        _users += 1
        if _collected_once:
            gc.collect(1)  # the young generations only: cheap
        else:
            gc.collect()  # once per process, so that the first freeze pins no garbage
            _collected_once = True
        gc.freeze()  # (`gc.get_freeze_count` walks the frozen objects: it is not called here)
    _log.debug("service.gc_frozen", thresholds=gc.get_threshold())


def _stop() -> None:
    global _users, _saved_thresholds
    with _lock:
        _users -= 1
        if _users:
            return
        if not _frozen_before:
            gc.unfreeze()
        if _saved_thresholds is not None:
            gc.set_threshold(*_saved_thresholds)
            _saved_thresholds = None
