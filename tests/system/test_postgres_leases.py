"""Backend leases and fenced writes, two "nodes" in one process against a real PostgreSQL server.

A backend is one node's until its lease expires or is released; every takeover raises the epoch;
a stale owner cannot write through its fenced store, and a takeover waits for a write in flight
so that the new owner reads it. Real time (the database's clock), every wait bounded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

import qmux
from qmux.journal import BackendLeases, JobSnapshot, PostgresStore

DEADLINE = 10.0


def _job(job_id: str, backend: str = "qpu", value: object = None) -> JobSnapshot:
    return JobSnapshot(job_id, None, backend, "p", {}, {}, "QUEUED", 1.0, value=value)


@pytest.fixture
def nodes(postgres_url: str) -> Iterator[tuple[BackendLeases, BackendLeases]]:
    a, b = BackendLeases(postgres_url, "node-a", ttl=30), BackendLeases(postgres_url, "node-b", ttl=30)
    yield a, b
    a.close()
    b.close()


def _sql(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(statement.encode())


def _expire_all(url: str) -> None:
    """Every lease lapses now, as if its owner had stopped renewing `ttl` seconds ago."""
    _sql(url, "UPDATE qmux_backend_leases SET expires_at = now() - interval '1 second'")


def test_a_lease_is_taken_over_only_once_it_expired_and_with_the_next_epoch(postgres_url: str) -> None:
    a, b = BackendLeases(postgres_url, "node-a", ttl=0.5), BackendLeases(postgres_url, "node-b", ttl=0.5)
    first = a.acquire("qpu")
    assert first is not None and first.epoch == 1
    assert a.acquire("qpu") is None  # held, even by the node itself: a second acquisition is no renewal
    assert b.acquire("qpu") is None
    assert b.holder("qpu") == ("node-a", 1)
    deadline = time.monotonic() + DEADLINE
    while (second := b.acquire("qpu")) is None:  # node-a stopped renewing: wait for expiry
        assert time.monotonic() < deadline, "the lease never expired"
        time.sleep(0.02)
    # node-a had to stop serving by its own deadline, which came before the database let node-b in
    assert time.monotonic() >= first.good_until
    assert (second.node, second.epoch) == ("node-b", 2)
    assert a.renew(first) is None  # lapsed and taken: lost for good
    assert a.holder("qpu") == ("node-b", 2)
    a.close()
    b.close()


def test_renewal_keeps_the_epoch_and_release_hands_over_at_once(
    nodes: tuple[BackendLeases, BackendLeases],
) -> None:
    a, b = nodes
    lease = a.acquire("qpu")
    assert lease is not None
    renewed = a.renew(lease)
    assert renewed is not None
    assert (renewed.epoch, renewed.node) == (lease.epoch, "node-a")
    assert renewed.expires_at > lease.expires_at and renewed.good_until > lease.good_until
    assert b.renew(lease) is None  # only its owner renews a lease
    assert b.acquire("qpu") is None
    a.release(renewed)
    taken = b.acquire("qpu")  # no waiting for expiry after a graceful release
    assert taken is not None and taken.epoch == lease.epoch + 1
    a.release(renewed)  # releasing what one no longer holds changes nothing
    assert b.holder("qpu") == ("node-b", taken.epoch)
    other = a.acquire("sim")  # leases are per backend
    assert other is not None and other.epoch == 1


def test_a_stale_owner_cannot_write_through_its_fenced_store(
    postgres_url: str, nodes: tuple[BackendLeases, BackendLeases]
) -> None:
    a, b = nodes
    store_a, store_b = PostgresStore(postgres_url, fence=a), PostgresStore(postgres_url, fence=b)
    assert a.acquire("qpu") is not None
    store_a.write([], [_job("j1", value="from a")])
    with pytest.raises(qmux.StorageError, match="node 'node-a' holds no lease on sim: nothing of this batch"):
        store_a.write([], [_job("j2"), _job("j3", backend="sim")])
    _expire_all(postgres_url)  # node-a is cut off and stops renewing; node-b takes the backend over
    assert b.acquire("qpu") is not None
    store_b.write([], [_job("j1", value="from b")])
    with pytest.raises(qmux.StorageError, match=r"node .node-a. lost its lease on qpu .*nothing of this batch"):
        store_a.write([], [_job("j1", value="stale"), _job("j4")])
    _, jobs = store_b.load(retain_finished=10)
    assert [(j.job_id, j.value) for j in jobs] == [("j1", "from b")]
    assert a.acquire("qpu") is None  # and it cannot take the backend back while node-b holds it
    store_a.close()
    store_b.close()


def test_a_takeover_waits_for_the_stale_owners_write_in_flight(
    postgres_url: str, nodes: tuple[BackendLeases, BackendLeases]
) -> None:
    a, b = nodes
    _sql(
        postgres_url,
        "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.id = 'slow' THEN PERFORM pg_sleep(0.5); END IF; RETURN NEW; END $$; "
        "CREATE TRIGGER slow BEFORE INSERT ON qmux_jobs FOR EACH ROW EXECUTE FUNCTION slow()",
    )
    store_a = PostgresStore(postgres_url, fence=a)
    assert a.acquire("qpu") is not None
    _expire_all(postgres_url)
    committed: list[float] = []

    def write() -> None:
        store_a.write([], [_job("slow", value="in flight")])  # fenced: holds the lease row until commit
        committed.append(time.monotonic())

    writer = threading.Thread(target=write)
    writer.start()
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        deadline = time.monotonic() + DEADLINE
        while not admin.execute("SELECT 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'").fetchall():
            assert time.monotonic() < deadline, "the write never started"
            time.sleep(0.01)
    taken = b.acquire("qpu")  # waits for node-a's transaction, then takes over
    acquired = time.monotonic()
    writer.join(DEADLINE)
    assert taken is not None and taken.epoch == 2
    assert committed and committed[0] <= acquired
    store_b = PostgresStore(postgres_url, fence=b)
    assert [(j.job_id, j.value) for j in store_b.load(retain_finished=10)[1]] == [("slow", "in flight")]
    store_a.close()
    store_b.close()


def test_bad_lease_settings_are_refused_clearly(postgres_url: str) -> None:
    with pytest.raises(qmux.InvalidInputError, match="ttl=0 is not a lease length"):
        BackendLeases(postgres_url, "node-a", ttl=0)
    with pytest.raises(qmux.InvalidInputError, match="node=''"):
        BackendLeases(postgres_url, "", ttl=5)
