"""The stores themselves, each against the `JournalStore` contract: memory, SQLite, PostgreSQL.

What a restart relies on: the latest snapshot per id, in first-write order; every session not
closed and job not finished, and per owner the newest closed sessions and finished jobs; a batch
all or nothing; schemas migrated by qmux and a newer one refused; failures as `StorageError`.
"""

from __future__ import annotations

import concurrent.futures
import pickle
import socket
import sqlite3
from pathlib import Path

import attrs
import psycopg
import pytest

import qmux
from qmux.journal import ErrorSnapshot, JobSnapshot, PostgresStore, SessionSnapshot, SQLiteStore
from qmux.journal._pgdb import SCHEMA_VERSION

from .places import JournalPlace


def _job(job_id: str, status: str = "QUEUED", owner: str | None = None, value: object = None) -> JobSnapshot:
    return JobSnapshot(job_id, None, "a", "p", {"x": job_id}, {"shots": 10}, status, 1.0, value=value, owner=owner)


def _session(session_id: str, state: str = "open", owner: str | None = None) -> SessionSnapshot:
    return SessionSnapshot(session_id, "a", 60.0, "dedicated", state, state != "closed", None, None, 1.0, owner=owner)


def test_a_store_keeps_the_latest_snapshot_of_each_id_in_first_write_order(journal: JournalPlace) -> None:
    store = journal.open()
    failed = ErrorSnapshot("failed", "boom", "backend_error")
    store.write([_session("s1"), _session("s2")], [_job("j1"), _job("j2"), _job("j3")])
    store.write(
        [_session("s2", "active"), _session("s1", "inactive")],
        [_job("j3", "DONE", value=[1, 2]), _job("j1", "RUNNING"), _job("j4")],
    )
    store.write([], [attrs.evolve(_job("j2", "ERROR"), error=failed)])
    store.close()
    reopened = journal.open()
    sessions, jobs = reopened.load(retain_finished=10)
    reopened.close()
    assert [(s.session_id, s.state) for s in sessions] == [("s1", "inactive"), ("s2", "active")]
    assert [(j.job_id, j.status) for j in jobs] == [
        ("j1", "RUNNING"),
        ("j2", "ERROR"),
        ("j3", "DONE"),
        ("j4", "QUEUED"),
    ]
    assert jobs[1].error == failed
    assert jobs[2] == _job("j3", "DONE", value=[1, 2])  # every field comes back as written


def _loaded(journal: JournalPlace, keep: int) -> tuple[list[SessionSnapshot], list[JobSnapshot]]:
    store = journal.open()
    try:
        return store.load(retain_finished=keep)
    finally:
        store.close()


def test_a_store_keeps_each_owners_newest_closed_sessions_and_finished_jobs(journal: JournalPlace) -> None:
    store = journal.open()
    owners = ["alice", "bob", None]
    # arrival order: for each i, one job and one session per owner; the even ones end
    for i in range(6):
        store.write(
            [_session(f"s{i}-{owner}", owner=owner) for owner in owners],
            [_job(f"j{i}-{owner}", owner=owner) for owner in owners],
        )
    for i in (4, 0, 2):  # ended out of arrival order: "newest" is by arrival, not by ending
        store.write(
            [_session(f"s{i}-{owner}", "closed", owner) for owner in owners],
            [_job(f"j{i}-{owner}", "DONE", owner) for owner in owners],
        )
    store.write([], [_job("j0-alice", "CANCELLED", "alice")])  # still one of alice's, still old
    sessions, jobs = store.load(retain_finished=2)
    store.close()
    # all that is open or unfinished, and each owner's two newest ended (2 and 4), in arrival order
    expected = [f"{i}-{owner}" for i in range(1, 6) for owner in owners]
    assert [s.session_id for s in sessions] == [f"s{key}" for key in expected]
    assert [j.job_id for j in jobs] == [f"j{key}" for key in expected]
    assert len(_loaded(journal, 1)[1]) == 3 * 3 + 3 * 1
    assert _loaded(journal, 100)[1][0].job_id == "j0-alice"


def _refuse_job(journal: JournalPlace, job_id: str) -> None:
    """A trigger that makes the database refuse one job's row, as a failing disk or constraint would."""
    if journal.kind == "sqlite":
        journal.sql(
            f"CREATE TRIGGER refuse BEFORE INSERT ON jobs WHEN NEW.id = '{job_id}' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
    else:
        journal.sql(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.id = '{job_id}' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$; "
            "CREATE TRIGGER refuse BEFORE INSERT ON qmux_jobs FOR EACH ROW EXECUTE FUNCTION refuse()"
        )


def test_a_batch_is_written_all_or_nothing(durable_journal: JournalPlace) -> None:
    store = durable_journal.open()
    store.write([_session("s1")], [_job("j1")])
    _refuse_job(durable_journal, "poison")
    # the sessions' statement succeeds and the jobs' fails: the whole batch is rolled back
    with pytest.raises(qmux.StorageError, match=r"cannot write the journal .*refused by the test"):
        store.write([_session("s1", "closed"), _session("s2")], [_job("j1", "DONE"), _job("j2"), _job("poison")])
    with pytest.raises(qmux.StorageError, match="a job's inputs or result cannot be journaled"):
        store.write([_session("s3")], [_job("j3"), _job("unpicklable", value=lambda: None)])
    assert store.load(retain_finished=10) == ([_session("s1")], [_job("j1")])
    store.write([_session("s2")], [_job("j2")])  # the store goes on after a refused batch
    assert [j.job_id for j in store.load(retain_finished=10)[1]] == ["j1", "j2"]
    store.close()


def _schema_version(journal: JournalPlace) -> int:
    if journal.kind == "sqlite":
        with sqlite3.connect(journal.target) as db:
            (version,) = db.execute("SELECT max(version) FROM qmux_schema").fetchone()
    else:
        with psycopg.connect(journal.target) as db:
            row = db.execute("SELECT max(version) FROM qmux_schema").fetchone()
            assert row is not None
            (version,) = row
    assert isinstance(version, int)
    return version


def test_a_journal_of_a_newer_schema_is_refused(durable_journal: JournalPlace) -> None:
    durable_journal.open().close()
    current = _schema_version(durable_journal)
    durable_journal.sql(f"INSERT INTO qmux_schema (version) VALUES ({current + 1})")
    with pytest.raises(qmux.StorageError, match=f"schema version {current + 1}, newer than the {current} this qmux"):
        durable_journal.open()
    durable_journal.sql(f"DELETE FROM qmux_schema WHERE version = {current + 1}")
    durable_journal.open().close()  # reopening a current journal migrates nothing and keeps it as is
    assert _schema_version(durable_journal) == current


# -- SQLite: journal files written before versioned schemas -----------------------------------

# The layout and statements of the first journal files (qmux before schema versions), verbatim.
_V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, state TEXT NOT NULL, row BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, finished INTEGER NOT NULL, row BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_seq ON jobs (finished, seq);
"""


def _v1_file(path: Path, sessions: list[SessionSnapshot], jobs: list[JobSnapshot]) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_V1_SCHEMA)
        for session in sessions:
            row = pickle.dumps(attrs.astuple(session, recurse=False), protocol=pickle.HIGHEST_PROTOCOL)
            db.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?)", (session.session_id, session.state, row))
        for seq, job in enumerate(jobs, start=1):
            row = pickle.dumps(attrs.astuple(job, recurse=False), protocol=pickle.HIGHEST_PROTOCOL)
            finished = int(job.status not in ("QUEUED", "RUNNING"))
            db.execute(
                "INSERT INTO jobs VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE "
                "SET finished = excluded.finished, row = excluded.row",
                (job.job_id, seq, finished, row),
            )
    db.close()


def test_sqlite_store_migrates_a_journal_file_written_before_schema_versions(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sessions = [
        _session("s-old", "closed", "alice"),
        _session("s-open", "active", "alice"),
        _session("s-bob", "closed"),
    ]
    failed = ErrorSnapshot("failed", "boom", None)
    jobs = [
        _job("j1", "DONE", "alice", value={"counts": {"00": 3}}),
        attrs.evolve(_job("j2", "ERROR", "alice"), error=failed),
        _job("j3", "QUEUED", "alice"),
        _job("j4", "DONE", "bob"),
        _job("j5", "RUNNING"),
    ]
    _v1_file(path, sessions, jobs)
    store = SQLiteStore(path)
    # owners were read out of the old rows: alice keeps her newest finished job only, bob his
    assert store.load(retain_finished=1) == (
        [sessions[0], sessions[1], sessions[2]],
        [jobs[1], jobs[2], jobs[3], jobs[4]],
    )
    store.write([_session("s-new", owner="alice")], [_job("j3", "RUNNING", "alice"), _job("j6", "QUEUED", "alice")])
    store.close()
    reopened = SQLiteStore(path)
    loaded_sessions, loaded_jobs = reopened.load(retain_finished=10)
    reopened.close()
    assert [s.session_id for s in loaded_sessions] == ["s-old", "s-open", "s-bob", "s-new"]
    assert [(j.job_id, j.status) for j in loaded_jobs] == [
        ("j1", "DONE"),
        ("j2", "ERROR"),
        ("j3", "RUNNING"),  # its first place kept through the migration
        ("j4", "DONE"),
        ("j5", "RUNNING"),
        ("j6", "QUEUED"),
    ]
    assert _schema_version(JournalPlace("sqlite", str(path))) == 2


def test_sqlite_store_says_clearly_when_it_cannot_write(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "journal.db")
    store._db.execute("PRAGMA query_only = ON")  # what a read-only journal file does to writes
    with pytest.raises(qmux.StorageError, match=r"cannot write the journal .*readonly"):
        store.write([], [_job("j")])
    store.close()


def test_sqlite_store_refuses_a_file_that_is_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "not-a-db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(qmux.StorageError, match="cannot open the journal"):
        SQLiteStore(path)


# -- PostgreSQL: a server over the network ------------------------------------------------------


def test_postgres_store_says_which_server_it_cannot_reach_and_never_its_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once the probe is closed
    url = f"postgresql://qmux:s3cret-pass@127.0.0.1:{port}/journal?connect_timeout=5"
    with pytest.raises(
        qmux.StorageError, match=rf"cannot open the journal postgresql://qmux@127.0.0.1:{port}/journal"
    ) as e:
        PostgresStore(url)
    assert "s3cret" not in str(e.value)
    with pytest.raises(qmux.InvalidInputError, match="cannot be read") as bad:
        PostgresStore("postgresql://qmux:s3cret pass@127.0.0.1/journal")
    assert "s3cret" not in str(bad.value)


def test_postgres_store_reconnects_once_when_its_connection_is_cut(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    store.write([], [_job("j1")])
    with psycopg.connect(postgres_url, autocommit=True) as admin:  # the server ends qmux's session
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'qmux'")
    store.write([], [_job("j1", "DONE"), _job("j2")])
    assert [(j.job_id, j.status) for j in store.load(retain_finished=10)[1]] == [("j1", "DONE"), ("j2", "QUEUED")]
    store.close()


def test_postgres_stores_opening_together_migrate_once(postgres_url: str) -> None:
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: PostgresStore(postgres_url), range(4)))
    for n, store in enumerate(stores):
        store.write([], [_job(f"j{n}")])
    assert len(stores[0].load(retain_finished=1)[1]) == 4
    for store in stores:
        store.close()
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT version FROM qmux_schema ORDER BY version").fetchall() == [
            (version,) for version in range(1, SCHEMA_VERSION + 1)
        ]
