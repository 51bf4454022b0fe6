"""The Jobs page: ``GET /`` and its files under ``GET /ui/{asset}``, served from the package.

A front door of its own in the one pipeline (`qmux._http.FrontDoor`), mounted before the others:
the page holds no data, so its routes are public; what it shows it reads from the native API with
the tenant's token (``Authorization: Bearer``), which the page keeps in the browser's session
storage, never in a URL. Its files are plain HTML, CSS and JavaScript in ``qmux/server/page/``
(package data: a wheel carries them), read once, when the first app is made.

Every answer carries a Content-Security-Policy that lets the page run only its own script and
style, reach only its own origin, and submit no form anywhere (the login form is read by the
script: even without it, the token cannot end up in a URL), plus ``nosniff`` and no referrer.
The files are cached by validation: ``Cache-Control: no-cache`` with a strong ETag, so a browser
asks each time and gets a 304 while the file is unchanged, and never runs an old script beside a
new page after an upgrade. A name that is not one of the page's files answers 404; the name is
one path segment, looked up in the files read, so no path reaches outside the folder.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
from collections.abc import Mapping
from typing import Final, final

from attrs import frozen

from .._core import NotFoundError
from .._http import Dialect, FrontDoor, Reply, Request, Route

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "CONTENT_TYPES",
    "PAGE",
    "PAGE_ROUTES",
    "Asset",
    "Page",
    "page_door",
    "page_files",
]

#: the page's own script and style only; requests to its own origin only; no inline code, no frames, no forms
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
#: a file's media type, by the end of its name; a file with another ending is not served
CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_INDEX: Final = "index.html"
_HEADERS: Final = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}

#: the page's dialect: the native API's error bodies; a query string (a bookmarked link's) is ignored
PAGE: Final = Dialect(
    name="page",
    unknown_route="the Jobs page is at / and its files under /ui/",
    unauthorized="the Jobs page needs no token",
    strict=False,
)


@frozen
class Asset:
    """One file of the page: its bytes, media type and entity tag."""

    body: bytes
    content_type: str
    etag: str

    @classmethod
    def of(cls, name: str, body: bytes) -> Asset:
        suffix = name[name.rfind(".") :]
        return cls(body, CONTENT_TYPES[suffix], f'"{hashlib.sha256(body).hexdigest()[:32]}"')

    def reply(self, request: Request) -> Reply:
        """200 with the file, or 304 when the browser's copy (``If-None-Match``) is this one."""
        headers = {**_HEADERS, "etag": self.etag}
        if self.etag in _tags(request.header("if-none-match")):
            return Reply(304, b"", headers)
        return Reply(200, self.body, {**headers, "content-type": self.content_type})


def _tags(if_none_match: str | None) -> set[str]:
    """The entity tags an ``If-None-Match`` names (weak ones compare as strong: RFC 9110's weak comparison)."""
    if if_none_match is None:
        return set()
    return {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}


@functools.cache
def page_files() -> Mapping[str, Asset]:
    """The page's files, by name: every file of ``qmux/server/page/`` with a served ending, read once."""
    folder = importlib.resources.files("qmux.server").joinpath("page")
    return {
        entry.name: Asset.of(entry.name, entry.read_bytes())
        for entry in folder.iterdir()
        if entry.is_file() and any(entry.name.endswith(suffix) for suffix in CONTENT_TYPES)
    }


@final
@frozen
class Page:
    """The handlers of the page's routes, over its files."""

    files: Mapping[str, Asset]

    async def index(self, request: Request) -> Reply:
        found = self.files.get(_INDEX)
        if found is None:
            raise NotFoundError(f"this installation of qmux lacks the Jobs page's {_INDEX} (qmux/server/page/)")
        return found.reply(request)

    async def asset(self, request: Request) -> Reply:
        name = request.params["asset"]
        found = self.files.get(name)
        if found is None or name == _INDEX:
            raise NotFoundError(f"the Jobs page has no file {name!r}; it has {', '.join(self.served())}")
        return found.reply(request)

    def served(self) -> list[str]:
        return sorted(name for name in self.files if name != _INDEX)


PAGE_ROUTES: Final[tuple[Route, ...]] = (
    Route(
        "GET",
        "/",
        "get_page",
        "The Jobs page (HTML; no token: it reads the API with one)",
        Page.index,
        ok={200: None},
        errors=(404,),
        public=True,
    ),
    Route(
        "GET",
        "/ui/{asset}",
        "get_page_asset",
        "One of the Jobs page's files: its script, style and icon",
        Page.asset,
        ok={200: None},
        errors=(404,),
        public=True,
    ),
)


def _owns(path: str) -> bool:
    return path == "/" or path.startswith("/ui/")


def _nobody(authorization: str | None) -> None:
    """The page's routes are all public: no credential is ever asked for."""
    return None


def page_door(files: Mapping[str, Asset] | None = None) -> FrontDoor:
    """The Jobs page's front door, over `files` (the package's, `page_files`, unless given)."""
    return FrontDoor(
        routes=PAGE_ROUTES,
        handlers=Page(page_files() if files is None else files),
        authenticate=_nobody,
        dialect=PAGE,
        owns=_owns,
    )
