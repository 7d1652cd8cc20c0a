"""The two WSGI apps of the pages for browsers, in the `trac` daemon group.

Why a WSGI page and not Trac's own hook: Trac's project index can take
another template (`trac.env_index_template`), but hands it only each
project's name, description and environment object, plus string variables;
latest activity, repositories, branch URLs and caching are Python work, and
doing it in a template would mean database queries in Jinja2. So `front_page`
answers Trac's root (`/trac/`, where `/` redirects) itself and passes every
other request to Trac; `folder_pages` answers the directory URLs of the
Bazaar tree (`/bzr/…/`), which Apache no longer lists itself (files below
them are still plain files, for `http://` readers). Both read their places
from `SetEnv` (`trac_breezy.setenv.PagesEnviron`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from trac_breezy.setenv import REALM, PagesEnviron
from trac_breezy.trac_app.front import access, folders, projects
from trac_breezy.trac_app.front.render import render
from trac_breezy.trac_app.front.urls import Site

WSGIApp = WSGIApplication
# Trac's common static files, which Apache serves below any project's path.
CHROME = "{trac_url}/_/chrome/common"


def respond(
    environ: Mapping[str, Any], start_response: StartResponse, status: str, body: bytes
) -> list[bytes]:
    start_response(
        status,
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
        ],
    )
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def not_allowed(start_response: StartResponse) -> list[bytes]:
    start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Length", "0")])
    return []


def front_page(trac: WSGIApp) -> WSGIApp:
    """Trac, with the front page at its root instead of Trac's project index."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") not in ("", "/"):
            return trac(environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return not_allowed(start_response)
        pages = PagesEnviron.from_environ(environ)
        site = Site.of(environ)
        body = render(
            "projects.html",
            site=site,
            section="projects",
            chrome=CHROME.format(trac_url=site.trac_url),
            projects=projects.projects(
                pages.env_parent_dir,
                pages.trac_url,
                pages.bzr_root,
                pages.authz_file,
                pages.project_errors,
            ),
        )
        return respond(environ, start_response, "200 OK", body)

    return app


def tree_relpath(environ: Mapping[str, Any], bzr_url: str) -> str:
    """The folder a request names, below the tree's root (from the raw URL,
    as the smart server reads it; Apache refuses encoded slashes)."""
    path = unquote(urlsplit(environ.get("REQUEST_URI", "")).path)
    prefix = bzr_url + "/"
    return path[len(prefix) :].strip("/") if path.startswith(prefix) else ""


def crumbs(relpath: str) -> list[tuple[str, str]]:
    """(name, relpath) of each folder on the way to `relpath`, itself included."""
    parts = [part for part in relpath.split("/") if part]
    return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]


def needs_login(
    environ: Mapping[str, Any], start_response: StartResponse, relpath: str, common: dict[str, Any]
) -> list[bytes]:
    """401 for an anonymous visitor of a folder the rules keep from anonymous."""
    body = render("login.html", relpath=relpath, **common)
    start_response(
        "401 Unauthorized",
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
            ("WWW-Authenticate", f'Basic realm="{REALM}"'),
        ],
    )
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def folder_pages(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The page of a folder of the Bazaar tree (directory URLs only)."""
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return not_allowed(start_response)
    pages = PagesEnviron.from_environ(environ)
    site = Site.of(environ)
    relpath = tree_relpath(environ, pages.bzr_url)
    common = {"site": site, "section": "branches", "chrome": CHROME.format(trac_url=site.trac_url)}
    who = access.visitor(pages.authz_file, environ.get("REMOTE_USER"))
    try:
        if not who.may_see(relpath):
            if who.user is None:
                return needs_login(environ, start_response, relpath, common)
            raise folders.NotAFolder(f"{relpath!r}: not readable by {who.user}")
        folder = folders.describe(
            pages.bzr_root, relpath, with_tip=who.may_see_branch(relpath), visitor=who
        )
        branches, branch_count = folders.branches_below(pages.bzr_root, relpath, who)
        entries = folders.entries(pages.bzr_root, relpath, who)
    except folders.NotAFolder:
        body = render("missing.html", relpath=relpath, **common)
        return respond(environ, start_response, "404 Not Found", body)
    # Which projects show this folder: any, whoever may read the folder itself.
    all_projects = projects.projects(pages.env_parent_dir, pages.trac_url, pages.bzr_root)
    body = render(
        "folder.html",
        folder=folder,
        branches=branches,
        branch_count=branch_count,
        entries=entries,
        crumbs=crumbs(folder.relpath),
        parent=folder.relpath.rpartition("/")[0],
        shown_in=projects.showing(all_projects, folder.relpath),
        user=environ.get("REMOTE_USER"),
        **common,
    )
    return respond(environ, start_response, "200 OK", body)
