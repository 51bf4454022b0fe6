"""The journal tests' fixtures: the places a journal lives (memory, SQLite, a real PostgreSQL
server started on first use), and a virtual clock that waits for the journal's worker threads."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..support.postgres import postgres_server, postgres_url
from ..support.threaded_clock import threads_hold_the_clock
from .places import DURABLE_KINDS, KINDS, JournalPlace, place

__all__ = ["durable_journal", "journal", "postgres_server", "postgres_url", "threads_hold_the_clock"]


def _place(request: pytest.FixtureRequest, tmp_path: Path) -> JournalPlace:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return place(request.param, tmp_path, url)


@pytest.fixture(params=KINDS)
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> JournalPlace:
    """A fresh journal in each of the three stores (a database of its own for PostgreSQL)."""
    return _place(request, tmp_path)


@pytest.fixture(params=DURABLE_KINDS)
def durable_journal(request: pytest.FixtureRequest, tmp_path: Path) -> JournalPlace:
    """A fresh journal in each store that survives its process: SQLite and PostgreSQL."""
    return _place(request, tmp_path)
