"""A backend whose jobs do what their inputs say, so that tests control time and failure.

Inputs are plain JSON (``{"seconds": 3, "fail": "boom", "value": 7}``), so the same scripted jobs
run through an in-process service and a remote one.
"""

from __future__ import annotations

from typing import Any

import trio
from attrs import define, field

import qmux


@define
class Execution:
    job_id: str
    session_id: str | None
    started: float
    ended: float | None = None
    outcome: str = "running"


@define(eq=False)
class ScriptedBackend:
    """Runs ``{"seconds", "fail", "value"}`` jobs on Trio's clock and records every execution."""

    name: str
    config: qmux.BackendConfig = field(factory=qmux.BackendConfig)
    executions: list[Execution] = field(factory=list)

    async def execute(self, request: qmux.JobRequest) -> object:
        inputs: dict[str, Any] = request.inputs if isinstance(request.inputs, dict) else {}
        record = Execution(request.job_id, request.session_id, trio.current_time())
        self.executions.append(record)
        try:
            await trio.sleep(float(inputs.get("seconds", 1.0)))
            if inputs.get("fail"):
                record.outcome = "failed"
                raise RuntimeError(str(inputs["fail"]))
            record.outcome = "done"
            return inputs.get("value", request.job_id)
        except trio.Cancelled:
            record.outcome = "cancelled"
            raise
        finally:
            record.ended = trio.current_time()

    def running_at(self, when: float) -> list[Execution]:
        return [e for e in self.executions if e.started <= when and (e.ended is None or e.ended > when)]


def job(seconds: float = 1.0, *, fail: str | None = None, value: object = None) -> dict[str, Any]:
    """The inputs of one scripted job."""
    inputs: dict[str, Any] = {"seconds": seconds}
    if fail is not None:
        inputs["fail"] = fail
    if value is not None:
        inputs["value"] = value
    return inputs


def qpu(name: str = "qpu", **config: Any) -> ScriptedBackend:
    """A scripted QPU (concurrency 1) with ITTL 10 s and max_ttl 1 h unless told otherwise."""
    settings: dict[str, Any] = {"interactive_ttl": 10.0, "max_ttl": 3600.0}
    settings.update(config)
    return ScriptedBackend(name, qmux.BackendConfig(**settings))
