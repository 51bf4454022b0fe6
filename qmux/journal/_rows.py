"""Rows: how every store turns the core's snapshots into bytes, and what it files them under.

A row is the tuple of a snapshot's fields in declaration order, pickled: the journal holds
whatever a job's inputs and results are (circuits, arrays, qiskit results) and is read back only
by qmux, from storage its own operator owns. Pickling a plain tuple costs a fraction of pickling
the attrs instance, and the journal writes one per changed job per batch.

Besides the bytes, stores index three facts of a row, named here once: its owner (retention is
per owner), whether a job is finished and whether a session is closed.
"""

from __future__ import annotations

import operator
import pickle

import attrs

from .._core import JobSnapshot, JobStatus, SessionSnapshot, SessionState, StorageError

__all__ = [
    "CLOSED",
    "dump_job",
    "dump_session",
    "is_closed",
    "is_finished",
    "load_job",
    "load_session",
]

#: the state of a session that has ended for good (SPEC S12-S14)
CLOSED = SessionState.CLOSED.value
_UNFINISHED = frozenset(status.value for status in JobStatus if not status.is_final)

_JOB_FIELDS = operator.attrgetter(*(field.name for field in attrs.fields(JobSnapshot)))
_SESSION_FIELDS = operator.attrgetter(*(field.name for field in attrs.fields(SessionSnapshot)))


def is_finished(job: JobSnapshot) -> bool:
    """True once the job is in a terminal state (SPEC J4): DONE, ERROR or CANCELLED."""
    return job.status not in _UNFINISHED


def is_closed(session: SessionSnapshot) -> bool:
    return session.state == CLOSED


def dump_job(job: JobSnapshot) -> bytes:
    return _dump(_JOB_FIELDS(job))


def dump_session(session: SessionSnapshot) -> bytes:
    return _dump(_SESSION_FIELDS(session))


def load_job(row: bytes) -> JobSnapshot:
    return JobSnapshot(*pickle.loads(row))


def load_session(row: bytes) -> SessionSnapshot:
    return SessionSnapshot(*pickle.loads(row))


def _dump(values: object) -> bytes:
    try:
        return pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise StorageError(f"a job's inputs or result cannot be journaled: {exc}") from exc
