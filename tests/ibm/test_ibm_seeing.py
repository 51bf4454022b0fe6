"""Seeing what runs through IBM's Runtime API (SPEC V1, U1, T1): metrics, tags, the workloads listing.

In memory, on the virtual clock, as ``tests/ibm/test_ibm_api.py``. The tags are the core's: a
job tagged through one API is found by them through the other.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
from trio.abc import Clock

from qmux.testing import job

from .test_ibm_api import API, OTHER_TOKEN, client, ended, ibm, open_session, submit


async def test_U1_a_jobs_metrics_are_ibms_shape_and_say_when_its_usage_is_final(autojump_clock: Clock) -> None:
    async with ibm() as (local, app), client(app) as http, client(app, f"Bearer {OTHER_TOKEN}") as other:
        job_id = await submit(http, job(3), backend="q")
        await trio.sleep(1)
        running = (await http.get(f"{API}/jobs/{job_id}/metrics")).json()
        assert running["usage"]["status"] == "pending" and running["timestamps"]["finished"] is None
        await ended(local, job_id)
        metrics = (await http.get(f"{API}/jobs/{job_id}/metrics")).json()
        assert set(metrics["timestamps"]) == {"created", "running", "finished"}
        assert metrics["usage"]["quantum_seconds"] == pytest.approx(3)
        assert metrics["usage"]["qpu_charge_time_seconds"] == pytest.approx(3), "what the client's job.usage() reads"
        assert metrics["usage"]["status"] == "complete" and metrics["attempts"] == 1
        assert (await other.get(f"{API}/jobs/{job_id}/metrics")).status_code == 404


async def test_U1_the_instances_usage_is_the_quantum_seconds_of_the_tenants_own_jobs(autojump_clock: Clock) -> None:
    async with ibm() as (local, app), client(app) as http, client(app, f"Bearer {OTHER_TOKEN}") as other:
        mine = [await submit(http, job(3), backend="q"), await submit(http, job(2), backend="sim")]
        theirs = await submit(other, job(5), backend="sim")
        for job_id in (*mine, theirs):
            await ended(local, job_id)
        usage = (await http.get(f"{API}/instances/usage")).json()
        assert usage["usage_consumed_seconds"] == pytest.approx(5), "what the client's service.usage() reads"
        assert usage["usage_limit_reached"] is False, "no limit: the client warns of none"
        assert (await other.get(f"{API}/instances/usage")).json()["usage_consumed_seconds"] == pytest.approx(5)


async def test_T1_tags_are_updated_and_filtered_on_and_shared_with_the_native_api(autojump_clock: Clock) -> None:
    async with ibm() as (local, app), client(app) as http, client(app, f"Bearer {OTHER_TOKEN}") as other:
        job_id = await submit(http, job(1), backend="q", tags=["first"])
        assert (await http.get(f"{API}/jobs/{job_id}")).json()["tags"] == ["first"]
        assert (await http.put(f"{API}/jobs/{job_id}/tags", json={"tags": ["second", "x"]})).status_code == 204
        assert (await http.get(f"{API}/jobs/{job_id}")).json()["tags"] == ["second", "x"]
        listed = (await http.get(f"{API}/jobs", params={"tags": "second"})).json()["jobs"]
        assert [document["id"] for document in listed] == [job_id]
        assert (await http.get(f"{API}/jobs", params={"tags": "first"})).json()["jobs"] == []
        assert await (await local.job(job_id)).tags() == ["second", "x"], "the core's tags: the native API's too"
        assert (await other.put(f"{API}/jobs/{job_id}/tags", json={"tags": ["theirs"]})).status_code == 404
        refused = await http.put(f"{API}/jobs/{job_id}/tags", json={"tags": [""]})
        assert refused.status_code == 422


async def workloads(http: httpx.AsyncClient, **query: Any) -> dict[str, Any]:
    response = await http.get(f"{API}/workloads", params=query)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_V1_workloads_list_sessions_batches_and_job_mode_jobs_page_by_page(autojump_clock: Clock) -> None:
    async with ibm() as (_, app), client(app) as http, client(app, f"Bearer {OTHER_TOKEN}") as other:
        session_id = await open_session(http)
        await submit(http, job(1), session_id=session_id)  # the root job: its id is the session's
        in_session = await submit(http, job(1), session_id=session_id)
        await trio.sleep(1)
        batch_id = await open_session(http, mode="batch")
        await trio.sleep(1)
        lone = await submit(http, job(1, fail="boom"), backend="sim", tags=["exp-7"])
        await trio.sleep(5)
        await http.delete(f"{API}/sessions/{batch_id}/close")
        everything = await workloads(http)
        ids = [workload["id"] for workload in everything["workloads"]]
        assert ids == [lone, batch_id, session_id], "newest first; a session's jobs are inside it"
        assert in_session not in ids and everything["total_count"] == 3 and "next" not in everything
        by_id = {workload["id"]: workload for workload in everything["workloads"]}
        assert (by_id[session_id]["mode"], by_id[session_id]["status"]) == ("session", "in_progress")
        assert (by_id[batch_id]["mode"], by_id[batch_id]["status"]) == ("batch", "canceled")
        assert (by_id[lone]["mode"], by_id[lone]["status"], by_id[lone]["tags"]) == ("job", "failed", ["exp-7"])
        assert "boom" in by_id[lone]["status_reason"] and by_id[lone]["accepting_jobs"] is None
        assert [w["id"] for w in (await workloads(http, mode="job"))["workloads"]] == [lone]
        assert [w["id"] for w in (await workloads(http, tags="exp-7"))["workloads"]] == [lone]
        assert [w["id"] for w in (await workloads(http, status=["canceled", "failed"]))["workloads"]] == [
            lone,
            batch_id,
        ]
        assert [w["id"] for w in (await workloads(http, search=session_id[:8]))["workloads"]] == [session_id]
        assert [w["id"] for w in (await workloads(http, sort="createdAt"))["workloads"]] == [session_id, batch_id, lone]
        paged: list[str] = []
        page = await workloads(http, limit=1)
        while True:
            paged += [workload["id"] for workload in page["workloads"]]
            if "next" not in page:
                break
            response = await http.get(f"{API}/workloads{page['next']['href']}")
            page = response.json()
        assert paged == ids, "the next cursor neither skips nor repeats"
        assert (await workloads(other))["workloads"] == [] and (await workloads(other))["total_count"] == 0
