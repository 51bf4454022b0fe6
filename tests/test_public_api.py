"""The public API is curated: what `qmux.__all__` promises exists, and errors share one root."""

from __future__ import annotations

import datetime as dt
import inspect

import attrs
import pytest

import qmux

CONTRACT = {
    "open_service", "Service", "ServiceSettings", "Session", "Job", "JobStatus", "BackendHandle", "Backend",
    "BackendConfig", "JobRequest", "QmuxError", "InvalidInputError", "BackendNotFoundError",
    "BackendUnavailableError", "SessionClosedError", "JobFailedError", "JobCancelledError", "current_session",
    "Event",
}  # fmt: skip


def test_all_lists_exactly_the_public_names_and_each_exists() -> None:
    assert sorted(qmux.__all__) == qmux.__all__
    assert set(qmux.__all__) >= CONTRACT
    for name in qmux.__all__:
        assert hasattr(qmux, name), name
    # pytest rewrites the asserts of a package that ships a plugin, and adds "@py_builtins": not a name
    public = {name for name in vars(qmux) if name.isidentifier() and not name.startswith("_")}
    public -= {"annotations", "backends"}
    assert public - set(qmux.__all__) <= {"primitives", "server", "journal", "ibm", "testing", "cluster"}


def test_every_error_is_a_qmux_error_and_bad_input_is_a_value_error() -> None:
    errors = [obj for obj in vars(qmux).values() if inspect.isclass(obj) and issubclass(obj, BaseException)]
    assert errors
    assert all(issubclass(error, qmux.QmuxError) for error in errors)
    assert issubclass(qmux.InvalidInputError, ValueError)
    assert issubclass(qmux.BackendNotFoundError, LookupError)


def test_an_event_is_a_frozen_value_with_the_fields_of_spec_E1() -> None:
    event = qmux.Event("job.done", dt.datetime.now(dt.UTC), session_id="s", job_id="j", data={"program_id": "p"})
    assert [field.name for field in attrs.fields(qmux.Event)][:5] == ["kind", "at", "session_id", "job_id", "data"]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.kind = "job.error"  # type: ignore[misc]
