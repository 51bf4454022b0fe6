"""Scripted backends: jobs that take given times, fail, fail transiently, hang or return given values.

One vocabulary describes what a job does: the plain-JSON mapping `job()` returns
(``{"seconds": 3, "value": 7}``, ``{"fail": "boom"}``, ``{"transient": "flaky"}``,
``{"hang": True}``). A `ScriptedBackend` decides what each execution does, first match wins:

1. *by input*: ``by_input(request)``; the default reads the job's own inputs, so a test can
   submit ``job(...)`` as inputs, and the same script runs in process and over HTTP;
2. *in order*: the next entry of ``script``, consumed one per execution;
3. ``default``: one virtual second, then the job's id as its result.

Everything runs on Trio's clock, so under ``MockClock(autojump_threshold=0)`` a job of an hour
takes no real time. Every execution is recorded in ``executions``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal, final

import trio
from attrs import define, field, frozen

import qmux

from .._core import TransientBackendError

__all__ = ["Execution", "ScriptedBackend", "TransientBackendError", "job", "qpu"]

#: the keys of a job description, as `job()` writes them
SCRIPT_KEYS: Final = frozenset({"seconds", "value", "fail", "transient", "hang"})
#: how long a described job takes when its description does not say
DEFAULT_SECONDS: Final = 1.0

Outcome = Literal["running", "done", "failed", "failed_transiently", "cancelled"]


@frozen
class _Step:
    """One parsed job description: what one execution does."""

    seconds: float
    value: object
    has_value: bool
    fail: str | None
    transient: str | None
    hang: bool

    @classmethod
    def parse(cls, description: Mapping[str, Any]) -> _Step:
        """Check a description (clear errors name the key and what is allowed) and read it."""
        seconds = description.get("seconds", DEFAULT_SECONDS)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= 0:
            raise qmux.InvalidInputError(
                f"scripted job seconds={seconds!r}: expected a number of seconds, 0 or more (math.inf: forever)"
            )
        fail, transient = _message(description, "fail"), _message(description, "transient")
        hang = description.get("hang", False)
        if not isinstance(hang, bool):
            raise qmux.InvalidInputError(f"scripted job hang={hang!r}: expected True or False")
        has_value = description.get("value") is not None
        given = {"fail": fail is not None, "transient": transient is not None, "hang": hang, "value": has_value}
        endings = [name for name, is_given in given.items() if is_given]
        if len(endings) > 1:
            raise qmux.InvalidInputError(
                f"scripted job says {' and '.join(endings)}: a job ends one way only (a value, fail, transient or hang)"
            )
        return cls(float(seconds), description.get("value"), has_value, fail, transient, hang)


def _message(description: Mapping[str, Any], key: str) -> str | None:
    message = description.get(key)
    if message is None:
        return None
    if not isinstance(message, str) or not message:
        raise qmux.InvalidInputError(f"scripted job {key}={message!r}: expected the error's message, a non-empty str")
    return message


def job(
    seconds: float = DEFAULT_SECONDS,
    *,
    value: object = None,
    fail: str | None = None,
    transient: str | None = None,
    hang: bool = False,
) -> dict[str, Any]:
    """Describe one scripted job: it runs `seconds` of virtual time, then ends one way.

    - returns `value` (plain JSON if the job crosses HTTP), or the job's id when none is given;
    - ``fail="message"``: raises ``RuntimeError(message)``: the job ends ``ERROR`` (SPEC J3);
    - ``transient="message"``: raises `TransientBackendError` (SPEC R1);
    - ``hang=True``: never ends by itself; only a cancel, the backend's ``job_timeout`` or the
      service's shutdown stop it (so does ``seconds=math.inf``).

    The description is a plain mapping: submit it as a job's inputs (``session.run("x", job(3))``)
    or list it in a `ScriptedBackend`'s ``script``.
    """
    description: dict[str, Any] = {"seconds": seconds}
    for key, given in (("value", value), ("fail", fail), ("transient", transient)):
        if given is not None:
            description[key] = given
    if hang is not False:
        description["hang"] = hang
    _Step.parse(description)
    return description


def described_by_inputs(request: qmux.JobRequest) -> Mapping[str, Any] | None:
    """The default ``by_input``: a job whose inputs are a `job()` description does what they say."""
    inputs = request.inputs
    if isinstance(inputs, Mapping) and not SCRIPT_KEYS.isdisjoint(inputs):
        return inputs
    return None


@define
class Execution:
    """One run of one job on a scripted backend, in Trio time."""

    job_id: str
    session_id: str | None
    started: float
    ended: float | None = None
    outcome: Outcome = "running"
    program_id: str = ""


def _script(entries: Iterable[Mapping[str, Any]]) -> deque[Mapping[str, Any]]:
    script = deque(entries)
    for index, entry in enumerate(script):
        try:
            _Step.parse(entry)
        except qmux.InvalidInputError as error:
            raise qmux.InvalidInputError(f"script[{index}]: {error}") from None
    return script


def _description(value: Mapping[str, Any]) -> Mapping[str, Any]:
    _Step.parse(value)
    return value


@final
@define(eq=False)
class ScriptedBackend:
    """A backend (`qmux.Backend`) whose jobs do what a test scripted, on Trio's clock.

    Each execution does the first of: what ``by_input(request)`` describes (by default, the job's
    inputs when they are a `job()` description), the next entry of ``script`` (in order, one per
    execution), or ``default``. ``executions`` records every run: job, session, start, end and
    outcome. ``script`` is a deque: append to it while a test runs to script what comes next.
    """

    name: str
    config: qmux.BackendConfig = field(factory=qmux.BackendConfig)
    script: deque[Mapping[str, Any]] = field(factory=deque, converter=_script)
    by_input: Callable[[qmux.JobRequest], Mapping[str, Any] | None] = field(default=described_by_inputs)
    default: Mapping[str, Any] = field(factory=job, converter=_description)
    executions: list[Execution] = field(factory=list, init=False)

    async def execute(self, request: qmux.JobRequest) -> object:
        """Run one job as scripted; a cancellation (job cancel, timeout, shutdown) ends it ``cancelled``."""
        step = _Step.parse(self._description_of(request))
        record = Execution(request.job_id, request.session_id, trio.current_time(), program_id=request.program_id)
        self.executions.append(record)
        try:
            if step.hang or math.isinf(step.seconds):
                await trio.sleep_forever()
            await trio.sleep(step.seconds)
            if step.fail is not None:
                record.outcome = "failed"
                raise RuntimeError(step.fail)
            if step.transient is not None:
                record.outcome = "failed_transiently"
                raise TransientBackendError(step.transient)
            record.outcome = "done"
            return step.value if step.has_value else request.job_id
        except trio.Cancelled:
            record.outcome = "cancelled"
            raise
        finally:
            record.ended = trio.current_time()

    def _description_of(self, request: qmux.JobRequest) -> Mapping[str, Any]:
        described = self.by_input(request)
        if described is not None:
            return described
        if self.script:
            return self.script.popleft()
        return self.default

    def running_at(self, when: float) -> list[Execution]:
        """The executions that were running at Trio time `when`."""
        return [e for e in self.executions if e.started <= when and (e.ended is None or e.ended > when)]


def qpu(
    name: str = "qpu",
    *,
    script: Iterable[Mapping[str, Any]] = (),
    by_input: Callable[[qmux.JobRequest], Mapping[str, Any] | None] = described_by_inputs,
    **config: Any,
) -> ScriptedBackend:
    """A scripted QPU: one job at a time, ITTL 10 s and max_ttl 1 h unless `config` says otherwise.

    `config` takes `qmux.BackendConfig`'s fields (``interactive_ttl=2``, ``max_ttl=600``,
    ``concurrency=4``, ``job_timeout=30``, ...).
    """
    settings: dict[str, Any] = {"interactive_ttl": 10.0, "max_ttl": 3600.0} | config
    return ScriptedBackend(name, qmux.BackendConfig(**settings), script=script, by_input=by_input)
