"""Schemathesis against the server's own OpenAPI description: no 500, no hang, every answer documented.

A real server on 127.0.0.1 (port 0, real clock), fuzzed from outside by the schemathesis CLI:
the coverage, fuzzing and stateful phases generate around a thousand requests, valid and not,
and check every answer against the document: no server error, documented status codes, content
types, headers and response schemas, and malformed requests refused. ``positive_data_acceptance``
is left out because the schema cannot say "a session_id or a backend": such a body is refused
with a 422 that names the rule, which is the answer wanted.

``GET /events`` (Server-Sent Events) is left out of the fuzzing: a stream of everything a tenant
sees is endless by design (it ends when the server stops), so each valid request would hold the
fuzzer until its timeout, and schemathesis validates JSON bodies, not event streams. Its answers
are checked against the document in ``tests/server/test_openapi.py``, and its behaviour in
``tests/server/test_seeing_http.py``.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import trio

from ..support.remote import TOKEN, real_server

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


async def test_the_openapi_description_survives_schemathesis(tmp_path: Path) -> None:
    assert SCHEMATHESIS.exists() or shutil.which("schemathesis"), "schemathesis is in the dev extra"
    with trio.fail_after(240):
        # the fuzzer sends thousands of requests without a token from one address on purpose: the
        # failed-authentication throttle (tested in test_abuse.py) would answer them 429, not 401
        async with real_server(server={"failed_auth_per_minute": 1_000_000, "failed_auth_burst": 1_000_000}) as server:
            done = await trio.run_process(
                [
                    str(SCHEMATHESIS),
                    "run",
                    f"{server.url}/openapi.json",
                    "--header",
                    f"Authorization: Bearer {TOKEN}",
                    "--checks",
                    "all",
                    "--exclude-checks",
                    "positive_data_acceptance",
                    "--exclude-operation-id",
                    "get_events",
                    "--max-examples",
                    "40",
                    "--seed",
                    "20261124",
                    "--workers",
                    "1",
                ],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                cwd=tmp_path,  # schemathesis keeps its state in the working directory
            )
    report = done.stdout.decode(errors="replace")
    assert done.returncode == 0, report[-4000:] + done.stderr.decode(errors="replace")[-2000:]
    generated = re.search(r"(\d+) generated", report)
    assert generated is not None and int(generated.group(1)) >= 300, report[-2000:]
