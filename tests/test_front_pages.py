"""The pages for browsers (trac_breezy/trac_app/front): URLs and commands,
folders of the tree, project summaries, and the two WSGI apps, without Apache."""

from __future__ import annotations

import importlib
import io
import os
import runpy
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from stack import ROOT
from test_bzr_storage import commit, make_branch, make_shared_repository, write

from trac_breezy.setenv import READ_ONLY, READ_WRITE, MisconfiguredError, PagesEnviron
from trac_breezy.trac_app.front import app, folders, projects
from trac_breezy.trac_app.front.urls import Site, origin

pytestmark = pytest.mark.usefixtures("fresh_bzr_caches")


def site(**overrides: Any) -> Site:
    values = {
        "origin": "http://example.org:8080",
        "trac_url": "/trac",
        "bzr_url": "/bzr",
        "writable": True,
        "public": True,
    }
    return Site(**{**values, **overrides})


# -- URLs and commands -----------------------------------------------------------


def test_the_origin_is_the_public_base_url_else_the_request_s_own():
    environ = {"wsgi.url_scheme": "http", "HTTP_HOST": "localhost:8080"}
    assert origin(environ) == "http://localhost:8080"
    assert origin(environ, "https://code.example.org/trac") == "https://code.example.org"
    assert origin({"wsgi.url_scheme": "https", "HTTP_HOST": "h"}) == "https://h"
    no_host = {"wsgi.url_scheme": "https", "SERVER_NAME": "h", "SERVER_PORT": "443"}
    assert origin(no_host) == "https://h"
    assert origin({**no_host, "SERVER_PORT": "8443"}) == "https://h:8443"


def test_commands_name_the_smart_server_url_and_are_shell_safe():
    s = site()
    assert s.command("branch", "code/trunk") == (
        "brz branch bzr+http://example.org:8080/bzr/code/trunk"
    )
    assert s.page("") == "/bzr/" and s.page("code/trunk") == "/bzr/code/trunk/"
    assert s.file("code/README") == "/bzr/code/README"
    assert s.command("checkout", "a b") == "brz checkout bzr+http://example.org:8080/bzr/a%20b"
    hostile = site(origin="http://h$(id)").command("push", "x")
    assert hostile == "brz push 'bzr+http://h$(id)/bzr/x'"


def test_the_pages_environ_needs_both_apps_places():
    environ = {
        "trac_breezy.trac_url": "/trac",
        "trac_breezy.env_parent_dir": "/var/lib/trac",
        "trac_breezy.bzr_url": "/bzr",
        "trac_breezy.bzr_root": "/srv/bzr",
        "trac_breezy.bzr_mode": READ_WRITE,
        "trac_breezy.anonymous_read": "no",
    }
    pages = PagesEnviron.from_environ(environ)
    assert pages.writable and not pages.public and pages.base_url == ""
    with pytest.raises(MisconfiguredError):
        PagesEnviron.from_environ({**environ, "trac_breezy.bzr_root": ""})
    with pytest.raises(MisconfiguredError):
        PagesEnviron.from_environ({**environ, "trac_breezy.bzr_mode": "anything"})
    assert not PagesEnviron.from_environ({**environ, "trac_breezy.bzr_mode": READ_ONLY}).writable


# -- Folders of the tree -------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """code/ (shared repository) with trunk (2 revisions) and empty; a README;
    a hidden folder; a symlink out of the tree."""
    root = tmp_path / "bzr"
    root.mkdir()
    make_shared_repository(root / "code")
    trunk = make_branch(root / "code" / "trunk")
    write(trunk, "f.txt", "one\n")
    commit(trunk, "first", 0)
    write(trunk, "f.txt", "two\n")
    commit(trunk, "second commit\n\nwith a body", 1)
    make_branch(root / "code" / "empty")
    (root / "docs").mkdir()
    (root / "README").write_text("read me\n")
    (root / ".hidden").mkdir()
    (root / "outside").symlink_to(tmp_path)
    return root


def test_a_folder_lists_branches_repositories_folders_and_files_never_bzr(tree: Path):
    top = folders.entries(str(tree), "")
    assert [(e.name, e.kind) for e in top] == [
        ("code", "repository"),
        ("docs", "folder"),
        ("README", "file"),
    ]
    assert folders.entries(str(tree), "code") == []  # branches only, and no .bzr
    below, count = folders.branches_below(str(tree), "")
    assert count == 2 and [e.relpath for e in below] == ["code/empty", "code/trunk"]
    code = {e.name: e for e in folders.branches_below(str(tree), "code")[0]}
    trunk = code["trunk"]
    assert trunk.is_branch and trunk.relpath == "code/trunk" and trunk.error is None
    assert trunk.tip is not None
    assert (trunk.tip.revno, trunk.tip.message) == ("2", "second commit")
    assert trunk.tip.author == "Test Committer <committer@…>"  # as Trac shows it
    assert code["empty"].is_branch and code["empty"].tip is None
    assert folders.describe(str(tree), "code/trunk/").relpath == "code/trunk"


def test_a_folder_page_lists_a_bounded_number_of_branches(tree: Path, monkeypatch):
    monkeypatch.setattr(folders, "MAX_BRANCHES", 1)
    below, count = folders.branches_below(str(tree), "")
    assert count == 2 and [e.relpath for e in below] == ["code/empty"]
    make_branch(tree / ".hidden" / "secret")
    assert folders.branches_below(str(tree), "")[1] == 2  # hidden folders stay hidden


@pytest.mark.parametrize(
    "relpath", ["code/trunk/.bzr", ".hidden", "..", "code/../..", "outside", "README", "nothing"]
)
def test_hidden_names_symlinks_and_files_are_no_folders(tree: Path, relpath: str):
    with pytest.raises(folders.NotAFolder):
        folders.describe(str(tree), relpath)


def test_a_branch_that_cannot_be_read_says_so(tree: Path):
    (tree / "code" / "trunk" / ".bzr" / "branch" / "format").write_text("garbage\n")
    broken = folders.describe(str(tree), "code/trunk")
    assert broken.is_branch and broken.tip is None and broken.error


# -- Projects ----------------------------------------------------------------------


def new_env(path: Path, **options: str) -> Any:
    from trac.env import Environment

    import trac_breezy.trac_app.bzr.connector  # noqa: F401 - registers the bzr connector

    settings = [("components", "trac_breezy.*", "enabled")]
    settings += [("project", name, value) for name, value in options.items()]
    return Environment(str(path), create=True, options=settings)


@pytest.fixture
def parent(tree: Path, tmp_path: Path) -> Path:
    """Trac projects: alpha shows code/ (a folder of branches), beta a missing
    branch and a branch outside the tree; a directory that is no project."""
    from trac.ticket.model import Ticket
    from trac.versioncontrol.api import DbRepositoryProvider

    projects._cache.clear()
    parent = tmp_path / "trac"
    parent.mkdir()
    alpha = new_env(parent / "alpha", name="Alpha", descr="The <alpha> project")
    DbRepositoryProvider(alpha).add_repository("", str(tree / "code"), "bzr")
    ticket = Ticket(alpha)
    ticket.populate({"summary": "a bug", "reporter": "someone", "status": "new"})
    ticket.insert()
    beta = new_env(parent / "beta", name="Beta", descr="")
    DbRepositoryProvider(beta).add_repository("later", str(tree / "later" / "trunk"), "bzr")
    outside = make_branch(tmp_path / "elsewhere")
    write(outside, "x.txt", "x\n")
    outside.commit("just now")  # newer than beta's wiki pages
    DbRepositoryProvider(beta).add_repository("elsewhere", str(outside.basedir), "bzr")
    (parent / "broken").mkdir()
    return parent


def test_projects_show_description_links_latest_activity_and_branches(parent: Path, tree: Path):
    found = projects.projects(str(parent), "/trac", str(tree))
    assert [p.slug for p in found] == ["alpha", "beta", "broken"]
    alpha, beta, broken = found
    assert (alpha.name, alpha.description, alpha.href) == (
        "Alpha",
        "The <alpha> project",
        "/trac/alpha",
    )
    assert dict(alpha.links) == {
        "Wiki": "/trac/alpha/wiki",
        "Timeline": "/trac/alpha/timeline",
        "Tickets": "/trac/alpha/report",
        "Browse source": "/trac/alpha/browser",
    }
    # The ticket is newer than the wiki pages of a new project and the commits
    # (which the fixture dated in 2024).
    assert alpha.latest is not None
    assert (alpha.latest.what, alpha.latest.href) == ("ticket #1", "/trac/alpha/ticket/1")
    (code,) = alpha.repositories
    assert (code.name, code.relpath, code.exists) == ("", "code", True)
    assert [(b.title, b.relpath, b.browser) for b in code.branches] == [
        ("empty", "code/empty", "/trac/alpha/browser/empty"),
        ("trunk", "code/trunk", "/trac/alpha/browser/trunk"),
    ]
    elsewhere, later = beta.repositories
    assert (later.name, later.relpath, later.exists) == ("later", "later/trunk", False)
    assert elsewhere.exists and elsewhere.branches[0].relpath is None  # outside the tree
    assert elsewhere.branches[0].title == "elsewhere"
    assert beta.latest is not None
    assert (beta.latest.what, beta.latest.detail) == ("changeset [1/elsewhere]", "just now")
    assert beta.latest.href == "/trac/beta/changeset/1/elsewhere"
    assert broken.error and not broken.repositories


def test_only_what_anonymous_may_see(parent: Path, tree: Path):
    from trac.env import open_environment
    from trac.perm import PermissionSystem

    env = open_environment(str(parent / "alpha"), use_cache=True)
    for action in ("TICKET_VIEW", "BROWSER_VIEW"):
        PermissionSystem(env).revoke_permission("anonymous", action)
    alpha = projects.projects(str(parent), "/trac", str(tree))[0]
    assert "Tickets" not in dict(alpha.links) and "Browse source" not in dict(alpha.links)
    assert not alpha.repositories
    assert alpha.latest is not None and alpha.latest.what.startswith("wiki page ")


def test_summaries_are_cached_for_a_while(parent: Path, tree: Path, monkeypatch):
    first = projects.projects(str(parent), "/trac", str(tree))
    monkeypatch.setattr(projects, "load", pytest.fail)
    assert projects.projects(str(parent), "/trac", str(tree)) == first
    monkeypatch.setattr(projects, "CACHE_SECONDS", -1.0)
    monkeypatch.setattr(projects, "load", lambda slug, *args: projects.Project(slug, slug, "", ""))
    assert projects.projects(str(parent), "/trac", str(tree))[0].description == ""


def test_which_projects_show_a_folder(parent: Path, tree: Path):
    found = projects.projects(str(parent), "/trac", str(tree))
    assert [(p.slug, url) for p, url in projects.showing(found, "code/trunk")] == [
        ("alpha", "/trac/alpha/browser/trunk")
    ]
    assert [(p.slug, url) for p, url in projects.showing(found, "code")] == [
        ("alpha", "/trac/alpha/browser")
    ]
    assert projects.showing(found, "docs") == []


# -- The WSGI apps ---------------------------------------------------------------


def environ_for(parent: Path, tree: Path, uri: str, method: str = "GET") -> dict[str, Any]:
    return {
        "REQUEST_METHOD": method,
        "REQUEST_URI": uri,
        "PATH_INFO": "/" if uri.startswith("/trac") else "",
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "localhost:8080",
        "trac_breezy.trac_url": "/trac",
        "trac_breezy.env_parent_dir": str(parent),
        "trac_breezy.bzr_url": "/bzr",
        "trac_breezy.bzr_root": str(tree),
        "trac_breezy.bzr_mode": READ_WRITE,
        "trac_breezy.anonymous_read": "yes",
        "trac_breezy.client_plugin_url": "/client/trac_breezy_streaming.py",
        "wsgi.input": io.BytesIO(),
    }


def call(application, environ: dict[str, Any]) -> tuple[str, dict[str, str], str]:
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer.update(status=status, headers=dict(headers))

    body = b"".join(application(environ, start_response)).decode()
    return answer["status"], answer["headers"], body


def test_the_front_page_shows_projects_branches_and_commands(parent: Path, tree: Path):
    status, headers, body = call(app.front_page(pytest.fail), environ_for(parent, tree, "/trac/"))
    assert status == "200 OK" and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "The &lt;alpha&gt; project" in body  # escaped
    assert "brz branch bzr+http://localhost:8080/bzr/code/trunk" in body
    assert "brz checkout bzr+http://localhost:8080/bzr/code/trunk" in body
    assert "brz push bzr+http://localhost:8080/bzr/later/trunk" in body  # nothing pushed yet
    assert 'href="/trac/alpha"' in body and 'href="/trac/alpha/timeline"' in body
    assert "/trac/_/chrome/common/css/trac.css" in body
    assert "ticket #1" in body and "Not served over HTTP" in body


def test_the_front_page_lets_every_other_trac_url_through(parent: Path, tree: Path):
    environ = {**environ_for(parent, tree, "/trac/alpha/wiki"), "PATH_INFO": "/alpha/wiki"}
    trac = app.front_page(lambda environ, start_response: [b"trac"])
    assert list(trac(environ, None)) == [b"trac"]
    status, headers, _ = call(trac, environ_for(parent, tree, "/trac/", "POST"))
    assert status.startswith("405") and headers["Allow"] == "GET, HEAD"


def test_folder_pages(parent: Path, tree: Path):
    status, _, body = call(app.folder_pages, environ_for(parent, tree, "/bzr/"))
    assert status == "200 OK"
    assert 'href="/bzr/code/"' in body and "code/</a>" in body and ".bzr" not in body
    assert 'href="/bzr/code/trunk/"' in body  # the branches anywhere below
    assert "brz branch bzr+http://localhost:8080/bzr/code/trunk" in body
    assert 'href="/bzr/README"' in body
    status, _, body = call(app.folder_pages, environ_for(parent, tree, "/bzr/code/trunk/"))
    assert status == "200 OK" and "Branch trunk" in body and "second commit" in body
    assert "brz branch bzr+http://localhost:8080/bzr/code/trunk" in body
    assert 'href="/trac/alpha/browser/trunk"' in body  # shown in Trac
    environ = {**environ_for(parent, tree, "/bzr/code/trunk/"), "REQUEST_METHOD": "HEAD"}
    assert call(app.folder_pages, environ)[2] == ""
    for missing in ("/bzr/code/trunk/.bzr/", "/bzr/nothing/", "/bzr/outside/"):
        status, _, body = call(app.folder_pages, environ_for(parent, tree, missing))
        assert status == "404 Not Found", missing
        assert "all branches" in body


def test_names_pushers_chose_are_escaped(parent: Path, tree: Path):
    (tree / "<script>x").mkdir()
    _, _, body = call(app.folder_pages, environ_for(parent, tree, "/bzr/"))
    assert "<script>" not in body and "&lt;script&gt;x/" in body


def test_the_wsgi_scripts_wrap_the_pages():
    folders_script = runpy.run_path(str(ROOT / "wsgi" / "folders.wsgi"))
    assert folders_script["application"].app is app.folder_pages
    trac_script = runpy.run_path(str(ROOT / "wsgi" / "trac.wsgi"))
    assert trac_script["application"].app.__qualname__ == "front_page.<locals>.app"


def test_the_templates_ship_with_the_package():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"trac_breezy.trac_app.front" = ["templates/*.html"]' in pyproject
    templates = Path(app.__file__).parent / "templates"
    assert {p.name for p in templates.glob("*.html")} >= {"projects.html", "folder.html"}


# -- Trac's libpq version under Python 3.13 -------------------------------------------


def test_trac_is_handed_psycopg2_s_libpq_version(monkeypatch):
    psycopg2 = types.ModuleType("psycopg2")
    extensions = types.ModuleType("psycopg2.extensions")
    extensions.libpq_version = lambda: 170012  # type: ignore[attr-defined]
    psycopg2.extensions = extensions  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "psycopg2", psycopg2)
    monkeypatch.setitem(sys.modules, "psycopg2.extensions", extensions)
    module = importlib.import_module("trac_breezy.trac_app.libpq_version")
    importlib.reload(module)
    assert psycopg2.libpq_version() == 170012  # type: ignore[attr-defined]
    entry = '"trac_breezy.libpq_version" = "trac_breezy.trac_app.libpq_version"'
    assert entry in (ROOT / "pyproject.toml").read_text()
    assert os.path.basename(module.__file__ or "") == "libpq_version.py"
