"""The public URLs of branches, and the `brz` commands a visitor copies.

Why this exists: both pages for browsers print `brz branch URL`, and the URL
must be one the visitor can reach: the scheme and host of `TRAC_BASE_URL`
when it is set (the public name, e.g. behind a proxy), else those the request
came with. Commands are shell-quoted, since they come from a Host header and
from directory names that a pusher chose.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from trac_breezy.setenv import PagesEnviron


def origin(environ: Mapping[str, Any], base_url: str = "") -> str:
    """`scheme://host[:port]` of the site as the visitor reaches it."""
    if base_url:
        parts = urlsplit(base_url)
        return f"{parts.scheme}://{parts.netloc}"
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST")
    if not host:
        port = str(environ.get("SERVER_PORT", ""))
        default = {"http": "80", "https": "443"}.get(scheme)
        host = environ.get("SERVER_NAME", "localhost") + ("" if port == default else f":{port}")
    return f"{scheme}://{host}"


@dataclass(frozen=True)
class Site:
    """Where Trac and the tree are, for one request."""

    origin: str  # "https://example.org", no trailing "/"
    trac_url: str  # URL path of Trac's root, "/trac"
    bzr_url: str  # URL path of the tree, "/bzr"
    writable: bool  # may users push?
    public: bool  # may anyone read the branches without a password?
    client_plugin_url: str = ""

    @classmethod
    def of(cls, environ: Mapping[str, Any]) -> Site:
        pages = PagesEnviron.from_environ(environ)
        return cls(
            origin=origin(environ, pages.base_url),
            trac_url=pages.trac_url,
            bzr_url=pages.bzr_url,
            writable=pages.writable,
            public=pages.public,
            client_plugin_url=pages.client_plugin_url,
        )

    @property
    def host(self) -> str:
        return urlsplit(self.origin).netloc

    def page(self, relpath: str) -> str:
        """The URL path of a folder's page in the tree ("" is the tree's root)."""
        inner = quote(relpath.strip("/"))
        return f"{self.bzr_url}/{inner}/" if inner else f"{self.bzr_url}/"

    def file(self, relpath: str) -> str:
        """The URL path of a plain file in the tree."""
        return f"{self.bzr_url}/{quote(relpath.strip('/'))}"

    def branch_url(self, relpath: str) -> str:
        """The URL brz uses for a branch: Breezy's smart server over HTTP(S)."""
        return f"bzr+{self.origin}{self.file(relpath)}"

    def command(self, verb: str, relpath: str) -> str:
        """`brz VERB URL`, ready to paste into a shell."""
        return f"brz {verb} {shlex.quote(self.branch_url(relpath))}"
