"""The Jobs page's routes: ``GET /`` and ``GET /ui/{asset}``, in memory through the one pipeline.

What a browser relies on: each file with its media type, a Content-Security-Policy that runs only
the page's own script and style and reaches only its own origin, revalidation by ETag (a 304
without a body), no token needed; and what an attacker tries: a name that is not one of the
page's files, or a path that climbs out of its folder, answers 404. The page's HTML and script are
checked for what the policy would break (inline code, other origins) and for HTML built from data.
(The page at work, in a real browser: ``tests/system/test_jobs_page.py``.)
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from trio.abc import Clock

from qmux.server import QmuxApp
from qmux.server._page import CONTENT_SECURITY_POLICY, page_files
from qmux.testing import qpu

from ..support.remote import asgi_client, served_app

PAGE_FOLDER = Path(__file__).resolve().parents[2] / "qmux" / "server" / "page"
MEDIA = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}


async def raw_get(app: QmuxApp, path: str) -> tuple[int, dict[str, str], bytes]:
    """GET `path` exactly as given, as an ASGI server hands it over (no client-side normalising)."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 5000),
    }
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        return incoming.pop() if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    headers = {name.decode(): value.decode() for name, value in start["headers"]}
    return start["status"], headers, b"".join(message.get("body", b"") for message in sent[1:])


def security_headers(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers.get_list("cache-control") == ["no-cache"]  # one policy: not the API's no-store too


async def test_the_page_is_served_at_the_root_without_a_token(autojump_clock: Clock) -> None:
    async with served_app([qpu("q")]) as (_, app), asgi_client(app, token=None) as anonymous:
        page = await anonymous.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        security_headers(page)
        assert re.fullmatch(r'"[0-9a-f]{32}"', page.headers["etag"])
        assert '<script src="ui/app.js" defer></script>' in page.text
        head = await anonymous.head("/")
        assert (head.status_code, head.content, head.headers["etag"]) == (200, b"", page.headers["etag"])
        ignored = await anonymous.get("/", params={"utm_source": "mail"})  # a link's query is no error
        assert ignored.status_code == 200
        async with asgi_client(app, token="not-a-token-of-anyone") as stranger:
            assert (await stranger.get("/")).status_code == 200


@pytest.mark.parametrize("name", sorted(MEDIA))
async def test_each_file_has_its_media_type_and_the_policy(name: str, autojump_clock: Clock) -> None:
    async with served_app([qpu("q")]) as (_, app), asgi_client(app, token=None) as anonymous:
        asset = await anonymous.get(f"/ui/{name}")
        assert asset.status_code == 200
        assert asset.headers["content-type"] == MEDIA[name]
        assert asset.content == (PAGE_FOLDER / name).read_bytes()
        security_headers(asset)


async def test_an_unchanged_file_is_revalidated_with_a_304(autojump_clock: Clock) -> None:
    async with served_app([qpu("q")]) as (_, app), asgi_client(app, token=None) as anonymous:
        first = await anonymous.get("/ui/app.js")
        etag = first.headers["etag"]
        for sent in (etag, f"W/{etag}", f'"something-else", {etag}'):
            again = await anonymous.get("/ui/app.js", headers={"if-none-match": sent})
            assert (again.status_code, again.content) == (304, b""), sent
            assert again.headers["etag"] == etag
            assert "content-length" not in again.headers  # a 304's would have to be the 200's
            security_headers(again)
        changed = await anonymous.get("/ui/app.js", headers={"if-none-match": '"an-older-version"'})
        assert (changed.status_code, changed.content) == (200, first.content)
        other = await anonymous.get("/ui/app.css", headers={"if-none-match": etag})
        assert other.status_code == 200


async def test_the_api_still_says_no_store(autojump_clock: Clock) -> None:
    async with served_app([qpu("q")]) as (_, app), asgi_client(app) as http:
        assert (await http.get("/backends")).headers.get_list("cache-control") == ["no-store"]


async def test_a_name_that_is_not_one_of_the_pages_files_answers_404(autojump_clock: Clock) -> None:
    async with served_app([qpu("q")]) as (_, app), asgi_client(app, token=None) as anonymous:
        missing = await anonymous.get("/ui/missing.js")
        assert missing.status_code == 404
        assert missing.json()["error"]["message"] == (
            "the Jobs page has no file 'missing.js'; it has app.css, app.js, icon.svg"
        )
        assert (await anonymous.get("/ui/index.html")).status_code == 404  # the page itself is at /
        assert (await anonymous.get("/ui/")).status_code == 404
        assert (await anonymous.post("/")).status_code == 405


@pytest.mark.parametrize(
    "path",
    [
        "/ui/../_page.py",
        "/ui/../../server/_app.py",
        "/ui/..",
        "/ui/.",
        "/ui/%2e%2e/_page.py",
        "/ui/..%2f_page.py",
        "/ui/..\\_page.py",
        "/ui/page/app.js",
        "/ui//etc/passwd",
        "/ui/_page.py",
        "/ui/__init__.py",
        "/ui/app.js%00.png",
    ],
)
async def test_no_path_reaches_outside_the_pages_files(path: str, autojump_clock: Clock) -> None:
    async with served_app([qpu("q")]) as (_, app):
        status, headers, body = await raw_get(app, path)
    assert status == 404, (path, body)
    assert headers["content-type"] == "application/json"
    assert b"import" not in body and b"root:" not in body


def test_the_package_ships_the_pages_files() -> None:
    """Read through importlib.resources, as an installed wheel is: every file of the folder is served."""
    assert set(page_files()) == {path.name for path in PAGE_FOLDER.iterdir()} == {"index.html", *MEDIA}


class _Markup(HTMLParser):
    """What the page's HTML loads and runs: scripts, styles, links, and any inline code."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str | None] = []
        self.inline: list[str] = []
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes.get("src"))
            self._in_script = True
        if tag == "style":
            self.inline.append("<style>")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.inline.append(f"{tag} {name}={value!r}")
            if name in ("src", "href", "action") and value is not None:
                self.urls.append(value)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = tag != "script" and self._in_script

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data)


def test_the_html_has_no_inline_code_and_loads_only_its_own_files() -> None:
    markup = _Markup()
    markup.feed((PAGE_FOLDER / "index.html").read_text())
    assert markup.scripts == ["ui/app.js"]
    assert markup.inline == []
    assert sorted(set(markup.urls)) == ["ui/app.css", "ui/app.js", "ui/icon.svg"]


def test_the_script_builds_no_html_from_strings_and_never_touches_local_storage() -> None:
    """Data goes into the page as text (textContent), and the token into session storage only."""
    script = re.sub(r"^\s*//.*$", "", (PAGE_FOLDER / "app.js").read_text(), flags=re.MULTILINE)  # code, not comments
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert "localStorage" not in script and "document.cookie" not in script
    assert "sessionStorage.setItem(TOKEN_KEY, token)" in script
