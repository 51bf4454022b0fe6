"""``qmux.open_service``: the core's supervisor, with the edges a user names resolved first.

The core takes backend objects and a journal store. Users may instead name a TOML file of
backends, rely on the embedded default set, or name a journal (a path or a URL); turning those into
objects is this module's one job, so that the core never reaches into ``qmux.backends`` or
``qmux.journal``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from ._core import Backend, JournalStore, Service, ServiceSettings, run_service

__all__ = ["open_service"]


@asynccontextmanager
async def open_service(
    backends: Iterable[Backend] | str | os.PathLike[str] | None = None,
    *,
    settings: ServiceSettings | None = None,
    journal: str | os.PathLike[str] | JournalStore | None = None,
) -> AsyncIterator[Service]:
    """Run a qmux service for the duration of the ``async with`` block.

    `backends`: the backends to serve, or the path of a TOML file that describes them;
    ``None`` gives the embedded default set. `journal`: where every accepted session and job
    is recorded before it is acknowledged: a SQLite file's path, a ``sqlite:///``,
    ``postgresql://`` or ``memory:`` URL (``qmux.journal.open_store``), or any `JournalStore`;
    when it already holds a journal, the service recovers from it first. Leaving the block
    normally drains for ``settings.shutdown_grace`` seconds; leaving it with an exception
    cancels at once. Either way, every job's waiter is woken.
    """
    resolved: Iterable[Backend]
    if backends is None:
        from .backends import default_backends

        resolved = default_backends()
    elif isinstance(backends, (str, os.PathLike)):
        from .backends import load_backends

        resolved = load_backends(backends)
    else:
        resolved = backends
    store: JournalStore | None
    if isinstance(journal, (str, os.PathLike)):
        from .journal import open_store

        store = open_store(journal)
    else:
        store = journal
    async with run_service(resolved, settings=settings, store=store) as service:
        yield service
