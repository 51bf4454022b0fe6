"""The Jobs page in a real browser: Debian's Chromium, driven by Playwright, against a real ``qmux serve``.

One server per module (a process on port 0, a SQLite journal, three tenants), one fresh browser
context per test (its own session and local storage). Work is made through the REST API with
httpx, as an agent would make it, while the page is open: what is checked is what the page shows
without being reloaded, and what the server says after the page acted. Every wait is bounded:
Playwright's actions and assertions by `WAIT_MS`, httpx by its timeout, the server's start and
stop by `tests.support.serving`.

Each test leaves a screenshot of its page in ``test-artifacts/`` (gitignored), for a failing run
to be looked at. With ``QMUX_JOBS_PAGE_SCREENSHOT=docs/jobs-page.png``, the screenshot test also
writes the README's picture there.

Needs Chromium at ``/usr/bin/chromium`` (``make test`` installs Debian's ``chromium`` package when
it is missing and it may) and the ``browser`` extra (Playwright); skips, saying which, without.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from ..support.serving import ServeProcess, serve_process

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the Jobs page's browser tests need Playwright: pip install -e '.[browser]'"
)
Page = sync_api.Page
expect = sync_api.expect

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
#: the longest any browser action or assertion waits, in milliseconds
WAIT_MS = 15_000
TOKEN = "jobs-page-token-1234"
OTHER_TOKEN = "another-tenants-token"
DOCS_TOKEN = "the-docs-tenants-token"
TOKEN_KEY = "qmux.token"

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    folder = tmp_path_factory.mktemp("serve")
    config = (
        f'[server]\nport = 0\njournal = "{folder / "journal.db"}"\n\n'
        "[service]\nshutdown_grace = 1.0\n\n"
        f'[[tenants]]\nname = "lab"\ntoken = "{TOKEN}"\n\n'
        f'[[tenants]]\nname = "other"\ntoken = "{OTHER_TOKEN}"\n\n'
        f'[[tenants]]\nname = "docs"\ntoken = "{DOCS_TOKEN}"\n\n'
        # a job takes two seconds: long enough to be seen queued and running, short enough to end soon
        "[backends.qpu]\nnum_qubits = 5\njob_seconds = 2.0\n\n"
        "[backends.sim]\nnum_qubits = 20\nsimulator = true\nconcurrency = 4\njob_seconds = 0.1\n\n"
        # jobs that run for a while: the queue behind them stays queued until a test has acted
        "[backends.slow]\nnum_qubits = 27\njob_seconds = 20.0\n\n"
        "[backends.fake_sherbrooke]\nnum_qubits = 127\njob_seconds = 30.0\n"
    )
    with serve_process(folder, config) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: the Jobs page's browser tests drive Debian's chromium package "
            "(make test installs it with apt-get when it runs as root)"
        )
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, server: ServeProcess, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh tab (its own storage) on the server's page; its screenshot is left in ``test-artifacts/``."""
    context = browser.new_context(viewport={"width": 1600, "height": 900})
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(server.url)
    try:
        yield tab
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
        context.close()
    assert errors == [], f"the page's script failed: {errors}"


@attrs.frozen
class Api:
    """The REST API as one tenant's agent uses it."""

    http: httpx.Client

    def open_session(self, backend: str) -> str:
        response = self.http.post("/sessions", json={"backend": backend})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def submit(self, program: str = "echo", *, session_id: str | None = None, backend: str | None = None) -> str:
        target = {"session_id": session_id} if session_id is not None else {"backend": backend}
        response = self.http.post("/jobs", json={"program_id": program, "params": 1, **target})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def session(self, session_id: str) -> dict[str, Any]:
        response = self.http.get(f"/sessions/{session_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def job_status(self, job_id: str) -> str:
        response = self.http.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return str(response.json()["state"]["status"])


@contextmanager
def tenant(server: ServeProcess, token: str) -> Iterator[Api]:
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {token}"}, timeout=30) as http:
        yield Api(http)


@pytest.fixture
def api(server: ServeProcess) -> Iterator[Api]:
    with tenant(server, TOKEN) as lab:
        yield lab


def log_in(page: Page, token: str = TOKEN) -> None:
    page.get_by_label("Your tenant's token").fill(token)
    page.get_by_role("button", name="Log in").click()


def logged_in(page: Page, token: str = TOKEN) -> None:
    """Log in and wait until the page follows the event stream."""
    log_in(page, token)
    expect(page.locator("#connection")).to_have_text("Live: updates as they happen")


def row(page: Page, table: str, key: str) -> Any:
    return page.locator(f"#{table} tbody tr[data-key='{key}']")


def cell(page: Page, table: str, key: str, column: str) -> Any:
    """The cell of `column` (its header's text) in the row of `key`."""
    headers = page.locator(f"#{table} thead th").all_inner_texts()
    return row(page, table, key).locator("th, td").nth(headers.index(column))


def never_reloaded(page: Page) -> None:
    """Mark the document: a reload or navigation would make a new one, without the mark."""
    page.evaluate("window.qmuxTestMark = 'same document'")


def assert_same_document(page: Page) -> None:
    assert page.evaluate("window.qmuxTestMark") == "same document", "the page was reloaded"


def test_logging_in_keeps_the_token_in_session_storage_only(page: Page, server: ServeProcess) -> None:
    requested: list[Any] = []
    page.on("request", lambda request: requested.append(request))
    logged_in(page)
    expect(page.locator("#backends tbody th")).to_have_text(["qpu", "sim", "slow", "fake_sherbrooke"])
    expect(cell(page, "backends", "fake_sherbrooke", "Qubits")).to_have_text("127")

    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") == TOKEN
    assert page.evaluate("localStorage.length") == 0
    assert page.evaluate("document.cookie") == ""
    assert TOKEN not in page.url
    assert requested and all(TOKEN not in request.url for request in requested)
    data = [request for request in requested if "/ui/" not in request.url and request.url != f"{server.url}/"]
    assert {re.sub(r"\?.*", "", request.url.removeprefix(server.url)) for request in data} >= {
        "/backends",
        "/sessions",
        "/jobs",
        "/events",
    }
    assert all(request.headers.get("authorization") == f"Bearer {TOKEN}" for request in data)

    page.reload()  # the same tab keeps its session storage: still logged in, the token asked for nowhere
    expect(page.locator("#connection")).to_have_text("Live: updates as they happen")
    assert TOKEN not in page.url

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("Your tenant's token")).to_be_visible()
    expect(page.locator("#backends tbody tr")).to_have_count(0)
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None


def test_a_wrong_token_is_refused_with_a_clear_message(page: Page) -> None:
    log_in(page, "not-the-token-0000")
    expect(page.get_by_role("alert")).to_have_text(
        "The server refused this token. Check it and try again: each tenant has its own."
    )
    expect(page.locator("#board")).to_be_hidden()
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None
    assert "not-the-token" not in page.url


def test_a_session_appears_and_changes_state_live_while_its_jobs_run_then_closes_from_the_page(
    page: Page, api: Api
) -> None:
    logged_in(page)
    never_reloaded(page)
    session = api.open_session("qpu")
    first, second = api.submit(session_id=session), api.submit(session_id=session)

    expect(row(page, "sessions", session)).to_be_visible()
    expect(cell(page, "sessions", session, "State")).to_have_text("active")
    expect(cell(page, "backends", "qpu", "Held by")).to_have_text(session)
    expect(cell(page, "jobs", second, "Status")).to_have_text("QUEUED")
    expect(cell(page, "jobs", first, "Status")).to_have_text("RUNNING")
    expect(cell(page, "jobs", second, "Status")).to_have_text("RUNNING")
    expect(cell(page, "jobs", first, "Status")).to_have_text("DONE")
    expect(cell(page, "jobs", first, "Finished").locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-"))
    expect(cell(page, "jobs", second, "Status")).to_have_text("DONE")
    expect(cell(page, "jobs", second, "Ran for")).to_have_text(re.compile(r"^2\.\d s$"))

    page.get_by_role("button", name=f"Close session {session}").click()
    page.get_by_role("dialog").get_by_role("button", name="Close session").click()
    expect(cell(page, "sessions", session, "State")).to_have_text("closed")
    expect(cell(page, "sessions", session, "Closed because")).to_have_text("closed")
    expect(cell(page, "backends", "qpu", "Held by")).to_have_text("—")
    expect(row(page, "sessions", session).get_by_role("button")).to_have_count(0)
    closed = api.session(session)
    assert (closed["state"], closed["closed_reason"]) == ("closed", "closed")  # SPEC S12: no jobs left to run
    assert_same_document(page)


def test_cancelling_a_session_from_the_page_asks_first_and_the_server_agrees(page: Page, api: Api) -> None:
    logged_in(page)
    never_reloaded(page)
    session = api.open_session("slow")
    api.submit(session_id=session)  # runs for 20 s, or waits for another test's job on the backend
    queued = [api.submit(session_id=session) for _ in range(2)]
    expect(cell(page, "jobs", queued[-1], "Status")).to_have_text("QUEUED")
    dialog = page.get_by_role("dialog")

    page.get_by_role("button", name=f"Cancel session {session}").click()
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_have_text(f"Cancel session {session}?")
    dialog.get_by_role("button", name="Keep it").click()
    expect(dialog).to_be_hidden()
    assert api.session(session)["state"] != "closed", "the session was cancelled though the user kept it"

    page.get_by_role("button", name=f"Cancel session {session}").click()
    dialog.get_by_role("button", name="Cancel session").click()
    expect(cell(page, "sessions", session, "State")).to_have_text("closed")
    expect(cell(page, "sessions", session, "Closed because")).to_have_text("cancelled")
    for job in queued:
        expect(cell(page, "jobs", job, "Status")).to_have_text("CANCELLED")
    expect(page.get_by_role("status").filter(has_text="Cancelled session")).to_have_text(
        f"Cancelled session {session}."
    )

    after = api.session(session)
    assert (after["state"], after["closed_reason"]) == ("closed", "cancelled")  # SPEC S13
    assert [api.job_status(job) for job in queued] == ["Cancelled", "Cancelled"]
    assert_same_document(page)


def test_cancelling_a_job_from_the_page(page: Page, api: Api) -> None:
    logged_in(page)
    session = api.open_session("slow")
    api.submit(session_id=session)
    queued = api.submit(session_id=session)
    expect(cell(page, "jobs", queued, "Status")).to_have_text("QUEUED")

    page.get_by_role("button", name=f"Cancel job {queued}").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")  # a modal dialog: Escape answers no
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert api.job_status(queued) == "Queued"

    page.get_by_role("button", name=f"Cancel job {queued}").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel job").click()
    expect(cell(page, "jobs", queued, "Status")).to_have_text("CANCELLED")
    expect(row(page, "jobs", queued).get_by_role("button")).to_have_count(0)
    assert api.job_status(queued) == "Cancelled"  # SPEC J2
    assert api.http.delete(f"/sessions/{session}/close").status_code == 204


def test_filters_show_one_backends_work_and_data_is_shown_as_text(page: Page, api: Api) -> None:
    logged_in(page)
    page.get_by_label("Backend", exact=True).select_option("sim")
    never_reloaded(page)
    on_qpu = api.open_session("qpu")
    on_sim = api.open_session("sim")
    trick = api.submit("<b>bold</b><img src=x onerror=alert(1)>", session_id=on_sim)

    expect(row(page, "sessions", on_sim)).to_be_visible()
    expect(cell(page, "jobs", trick, "Program")).to_have_text("<b>bold</b><img src=x onerror=alert(1)>")
    expect(cell(page, "jobs", trick, "Status")).to_have_text("ERROR")  # no such program on the backend
    expect(cell(page, "jobs", trick, "Reason")).to_contain_text("has no program")
    assert page.locator("#jobs b, #jobs img").count() == 0
    expect(row(page, "sessions", on_qpu)).to_have_count(0)
    assert set(page.locator("#sessions tbody tr td:nth-of-type(1)").all_inner_texts()) == {"sim"}

    page.get_by_label("Session state", exact=True).select_option("closed")
    expect(row(page, "sessions", on_sim)).to_have_count(0)
    page.get_by_label("Backend", exact=True).select_option("")
    page.get_by_label("Session state", exact=True).select_option("")
    expect(row(page, "sessions", on_qpu)).to_be_visible()
    assert_same_document(page)
    for session in (on_qpu, on_sim):
        api.http.delete(f"/sessions/{session}/close")


def test_each_tenant_sees_its_own_work_in_every_state(page: Page, server: ServeProcess, api: Api) -> None:
    """A tenant's page shows its sessions and jobs in each state, and none of another tenant's.

    Its screenshot is the README's picture (``QMUX_JOBS_PAGE_SCREENSHOT=docs/jobs-page.png``).
    """
    elsewhere = api.open_session("sim")
    with tenant(server, DOCS_TOKEN) as docs:
        logged_in(page, DOCS_TOKEN)
        cancelled = docs.open_session("qpu")
        docs.submit(session_id=cancelled)
        docs.submit(session_id=cancelled)
        expect(cell(page, "jobs", cancelled, "Status")).to_have_text("RUNNING")
        assert docs.http.delete(f"/sessions/{cancelled}/close").status_code == 204
        done = docs.open_session("sim")
        for _ in range(3):
            docs.submit(session_id=done)
        docs.submit("no_such_program", session_id=done)
        holder = docs.open_session("fake_sherbrooke")
        docs.submit(session_id=holder)
        docs.submit(session_id=holder)
        waiting = docs.open_session("fake_sherbrooke")
        docs.submit(session_id=waiting)

        expect(cell(page, "sessions", cancelled, "Closed because")).to_have_text("cancelled")
        expect(cell(page, "backends", "fake_sherbrooke", "Held by")).to_have_text(holder)
        expect(cell(page, "sessions", waiting, "State")).to_have_text("open")
        expect(page.locator("#jobs tbody .badge")).to_contain_text(["QUEUED", "QUEUED", "RUNNING"])
        for status in ("DONE", "ERROR", "CANCELLED"):
            expect(page.locator("#jobs tbody .badge", has_text=status).first).to_be_visible()
        expect(cell(page, "backends", "fake_sherbrooke", "In line")).to_have_text("1")
        expect(row(page, "sessions", elsewhere)).to_have_count(0)

        target = os.environ.get("QMUX_JOBS_PAGE_SCREENSHOT")
        if target:
            page.mouse.move(0, 0)  # no row highlighted under the pointer
            page.screenshot(path=target, full_page=True)
        for session in (done, holder, waiting):
            docs.http.delete(f"/sessions/{session}/close")
    api.http.delete(f"/sessions/{elsewhere}/close")
