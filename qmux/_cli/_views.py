"""What the operators' commands say, as plain data: ``--json`` prints it, the tables are drawn from it.

Each view is read through the public API of a connected service (``backends()``, a session's
``details()`` and ``status()``, a job's ``status()``, ``metrics()`` and error), so the same
functions serve a remote service and a local one. Keys are the API's own names, so a script
reading ``--json`` meets the words of the REST API and of ``details()``.
"""

from __future__ import annotations

from typing import Any

import attrs

from .._core import BackendHandle, Job, JobError, JobStatus, Session

__all__ = ["backend_view", "event_view", "job_view", "session_view"]


def backend_view(handle: BackendHandle) -> dict[str, Any]:
    """A backend: its name, its queue depth as of the last answer, its configuration."""
    return {
        "name": handle.name,
        "pending_jobs": handle.pending_jobs,
        "operational": handle.operational,
        "simulator": handle.simulator,
        "num_qubits": handle.num_qubits,
        "configuration": attrs.asdict(handle.config),
    }


async def session_view(session: Session) -> dict[str, Any]:
    """A session: ``details()`` (SPEC S18's fields) with its status line."""
    details = await session.details()
    return {"kind": "session", "status": await session.status(), **details}


async def job_view(job: Job) -> dict[str, Any]:
    """A job: where it runs, its status, its metrics (SPEC U1) and, if it failed or was cancelled, why."""
    status = JobStatus(await job.status())
    view: dict[str, Any] = {
        "kind": "job",
        "id": job.job_id,
        "backend": job.backend_name,
        "session_id": job.session_id,
        "program_id": job.program_id,
        "status": status.value,
        "error": None,
        "metrics": await job.metrics(),
    }
    if status in (JobStatus.ERROR, JobStatus.CANCELLED):
        try:
            await job.result()
        except JobError as error:
            view["error"] = {"type": type(error).__name__, "message": str(error), "reason": error.reason}
    return view


def event_view(event: Any) -> dict[str, Any]:
    """An event of ``service.events()`` (SPEC E1: ``kind``, ``at``, ``session_id``, ``job_id``, ``data``)."""
    return {
        "kind": event.kind,
        "at": event.at.isoformat(),
        "session_id": event.session_id,
        "job_id": event.job_id,
        "data": dict(event.data or {}),
    }
