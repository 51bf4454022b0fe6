"""`open_store` and ``open_service(journal=...)``: a journal named by a path or a URL."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio

import qmux
from qmux.journal import JOURNAL_FORMS, MemoryStore, PostgresStore, SQLiteStore, open_store
from qmux.testing import job, qpu


def test_a_path_or_a_sqlite_url_is_a_sqlite_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for journal, path in [
        (tmp_path / "as-path.db", tmp_path / "as-path.db"),
        (str(tmp_path / "as-text.db"), tmp_path / "as-text.db"),
        ("relative.db", Path("relative.db")),
        (f"sqlite://{tmp_path}/absolute.db", tmp_path / "absolute.db"),
        ("sqlite:in-cwd.db", Path("in-cwd.db")),
    ]:
        store = open_store(journal)
        assert isinstance(store, SQLiteStore)
        assert store.path == path
        store.close()
        assert path.exists()


def test_memory_is_a_memory_journal() -> None:
    assert isinstance(open_store("memory:"), MemoryStore)


def test_a_postgresql_url_is_a_postgresql_journal(postgres_url: str) -> None:
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://", 1)):
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        store.close()


@pytest.mark.parametrize(
    ("journal", "complaint"),
    [
        ("mysql://db.example/qmux", "is not a journal qmux knows"),
        ("memory:somewhere", "is not a journal qmux knows"),
        ("sqlite://db.example/qmux.db", "names a host"),
        ("sqlite:///", "names no file"),
        ("", "is empty"),
    ],
)
def test_any_other_journal_is_refused_naming_it_and_the_allowed_forms(journal: str, complaint: str) -> None:
    with pytest.raises(qmux.InvalidInputError, match=complaint) as refused:
        open_store(journal)
    assert repr(journal) in str(refused.value)
    if "qmux knows" in complaint:
        assert JOURNAL_FORMS in str(refused.value)


def test_a_postgresql_journal_without_psycopg_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what `import psycopg` meets when it is not installed
    for module in ("qmux.journal._postgres", "qmux.journal._pgdb", "qmux.journal._leases"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(qmux.StorageError, match=r"needs psycopg 3.*pip install 'qmux\[postgres\]'"):
        open_store("postgresql://localhost/qmux")


async def test_open_service_keeps_its_work_in_the_journal_a_url_names(postgres_url: str) -> None:
    with trio.fail_after(30):
        async with qmux.open_service([qpu("a", interactive_ttl=0.01)], journal=postgres_url) as service:
            done = await service.backend("a").run("script", job(0.01, value="kept"))
            await done.result()
        async with qmux.open_service([qpu("a", interactive_ttl=0.01)], journal=postgres_url) as service:
            again = await service.job(done.job_id)
            assert await again.result() == "kept"
