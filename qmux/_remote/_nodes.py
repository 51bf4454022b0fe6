"""The nodes a connection may talk to, and the one it talks to now (`Nodes`).

``qmux.connect`` takes one URL or several: the nodes of a cluster, any of which answers any
request (it forwards what another node owns). The connection uses one node, the *current* one,
for every request while it answers, so that a client's requests stay on one node's connections;
when a node fails (`RetryTransport` says when), the connection moves to the next in the order
given, and stays there. Many requests run at once: a node is left once however many of them see
it fail (only the request that finds it current moves the connection on).

Requests are built against the first node's URL (the HTTP client's base URL); `Nodes.request_for`
sends one to another node by swapping that base for the node's, path prefix included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final, final

import httpx
import structlog

from .._core import InvalidInputError

__all__ = ["DEFAULT_URL", "URL_VARIABLE", "Nodes", "node_urls", "shown"]

_log = structlog.get_logger("qmux.remote")

#: where ``qmux serve`` listens by default
DEFAULT_URL: Final = "http://127.0.0.1:8765"
#: the environment variable that names the server when no URL is given: one URL, or several separated by commas
URL_VARIABLE: Final = "QMUX_URL"
_SCHEMES: Final = frozenset({"http", "https"})


def node_urls(url: str | Iterable[str] | None, environ: Mapping[str, str]) -> tuple[str, ...]:
    """The base URLs `url` names, checked: one URL, several separated by commas, or an iterable of
    them; none (``None`` or ``""``): ``$QMUX_URL``, else `DEFAULT_URL`."""
    if url is None or url == "":
        url = environ.get(URL_VARIABLE) or DEFAULT_URL
    if isinstance(url, str):
        given = [url]
    elif isinstance(url, Iterable) and all(isinstance(item, str) for item in url):
        given = list(url)
    else:
        raise InvalidInputError(f"url={url!r} must be a URL, several separated by commas, or a list of URLs")
    urls = [part.strip() for item in given for part in item.split(",")]
    if not urls or not all(urls):
        raise InvalidInputError(f"url={url!r} has an empty entry; give each node's URL, e.g. {DEFAULT_URL}")
    checked: list[str] = []
    for text in urls:
        try:
            parsed = httpx.URL(text)
        except httpx.InvalidURL as exc:
            raise InvalidInputError(f"{text!r} is not a URL ({exc})") from None
        if parsed.scheme not in _SCHEMES or not parsed.host or parsed.query or parsed.fragment:
            raise InvalidInputError(
                f"{text!r} is not the base URL of a qmux server: http:// or https://, a host, an optional port "
                f"and path, no query (e.g. {DEFAULT_URL})"
            )
        if any(_same(httpx.URL(other), parsed) for other in checked):
            raise InvalidInputError(f"{shown(parsed)} is given twice; give each node once")
        checked.append(text)
    return tuple(checked)


def _same(a: httpx.URL, b: httpx.URL) -> bool:
    """Whether two base URLs name the same server (a trailing slash or a default port aside)."""
    return (a.scheme, a.host, a.port, a.raw_path.rstrip(b"/")) == (b.scheme, b.host, b.port, b.raw_path.rstrip(b"/"))


def shown(url: httpx.URL | str) -> str:
    """A URL as messages and logs show it: without any user name or password it carries."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(userinfo=b"")) if parsed.userinfo else str(parsed)


@final
class Nodes:
    """The base URLs of a connection's nodes, in the order given, and which one it uses now."""

    def __init__(self, urls: Sequence[str]) -> None:
        if not urls:
            raise InvalidInputError("a connection needs at least one node's URL")
        self.urls: Final = tuple(httpx.URL(url) for url in urls)
        #: the index of the node every request goes to first
        self.current = 0
        self._prefix = self.urls[0].raw_path.rstrip(b"/")

    @classmethod
    def addressed(cls, request: httpx.Request) -> Nodes:
        """One node: the server `request` is addressed to."""
        return cls([str(request.url.copy_with(raw_path=b"/")).removesuffix("/")])

    def __len__(self) -> int:
        return len(self.urls)

    @property
    def current_url(self) -> str:
        return shown(self.urls[self.current])

    def shown(self, index: int) -> str:
        return shown(self.urls[index])

    def pick(self, avoid: set[int]) -> int | None:
        """The current node, or if `avoid` has it, the first after it that `avoid` has not; ``None``: all avoided."""
        for step in range(len(self.urls)):
            index = (self.current + step) % len(self.urls)
            if index not in avoid:
                return index
        return None

    def leave(self, index: int, why: str) -> None:
        """Node `index` failed: if it is the current one, the next becomes current (and stays so)."""
        if len(self.urls) < 2 or self.current != index:
            return  # one node: nowhere else to go; or another request moved on already
        self.current = (index + 1) % len(self.urls)
        _log.warning("remote.node_left", node=self.shown(index), why=why, now_using=self.current_url)

    def request_for(self, request: httpx.Request, index: int) -> httpx.Request:
        """`request` (built against the first node's URL) sent to node `index` instead."""
        if index == 0:
            return request
        node = self.urls[index]
        relative = request.url.raw_path[len(self._prefix) :]
        target = node.copy_with(raw_path=node.raw_path.rstrip(b"/") + relative)
        headers = request.headers.copy()
        headers["host"] = target.netloc.decode("ascii")
        return httpx.Request(
            request.method, target, headers=headers, stream=request.stream, extensions=request.extensions
        )
