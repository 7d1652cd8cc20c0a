"""Trac obeys the rule file (AUTHZ_FILE) with the tree's paths, in-process.

A real Trac project made as the container makes one (inheriting the shared
trac.ini written from the settings), real Bazaar branches under a tree root,
and Trac's own permission system and request handlers: browser, log,
changeset, timeline and search, for alice (writes /alpha, reads /beta), bob
(writes /beta only) and anonymous (reads /public only). Then a project whose
own trac.ini names other policies, the file reread on change, and the pages
for browsers (front page, folder pages) filtered by the same rules.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from test_bzr_storage import commit, make_branch, make_shared_repository, write
from trac.env import Environment, open_environment
from trac.perm import PermissionCache, PermissionError
from trac.resource import Resource
from trac.test import MockRequest
from trac.util.datefmt import utc
from trac.versioncontrol.api import DbRepositoryProvider, RepositoryManager
from trac.web.href import Href

import trac_breezy.trac_app.authz_policy
import trac_breezy.trac_app.bzr.connector  # noqa: F401 - registers the bzr connector
from trac_breezy.admin import global_config, projects
from trac_breezy.container import settings, trac_ini
from trac_breezy.setenv import READ_WRITE
from trac_breezy.trac_app.front import app
from trac_breezy.trac_app.front import projects as front_projects
from trac_breezy.trac_app.front.activity import latest_changesets

pytestmark = pytest.mark.usefixtures("fresh_bzr_caches")

RULES = """\
[groups]
alpha-team = alice

[/]
* =

[/alpha]
@alpha-team = rw

[/beta]
alice = r
bob = rw

[/public]
* = r
"""
USERS = ("alice", "bob", "anonymous")
# What each user may read, by repository of the project "hub".
READS = {
    "alice": {"alpha", "beta", "public"},
    "bob": {"beta", "public"},
    "anonymous": {"public"},
}
MESSAGES = {"alpha": "alpha secret plan", "beta": "beta roadmap", "public": "public hello"}


@dataclass
class Site:
    root: Path  # BZR_ROOT
    parent: Path  # TRAC_ENV_PARENT_DIR
    rules: Path  # AUTHZ_FILE
    shared: Path  # the shared trac.ini
    loaded: settings.Settings

    @property
    def hub(self) -> Path:
        return self.parent / "hub"


def make_tree(root: Path) -> None:
    """alpha/trunk and beta/trunk (branches), public/ (a shared repository with trunk)."""
    for hours, name in enumerate(("alpha", "beta")):
        (root / name).mkdir()
        tree = make_branch(root / name / "trunk")
        write(tree, f"{name}.txt", f"{name} inside\n")
        commit(tree, MESSAGES[name], hours)
    make_shared_repository(root / "public")
    tree = make_branch(root / "public" / "trunk")
    write(tree, "hello.txt", "hello\n")
    commit(tree, MESSAGES["public"], 2)


@pytest.fixture(scope="module")
def site(bzr_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Project "hub" (made as TRAC_PROJECTS makes it) shows alpha (cached), beta
    (cached) and public (a folder of branches, direct)."""
    base = tmp_path_factory.mktemp("authz")
    root, parent = base / "bzr", base / "trac"
    root.mkdir()
    parent.mkdir()
    make_tree(root)
    rules = base / "authz"
    rules.write_text(RULES)
    loaded = settings.load(
        {"AUTHZ_FILE": str(rules), "BZR_ROOT": str(root), "TRAC_ENV_PARENT_DIR": str(parent)}
    )
    shared = base / "trac-global.ini"
    shared.write_text(trac_ini.render(loaded, ()))
    assert projects.create(loaded, "hub", global_ini=shared)
    env = Environment(str(parent / "hub"))
    for name, where, cached in (
        ("alpha", "alpha/trunk", "true"),
        ("beta", "beta/trunk", "true"),
        ("public", "public", "false"),
    ):
        env.config.set("repositories", f"{name}.dir", str(root / where))
        env.config.set("repositories", f"{name}.type", "bzr")
        env.config.set("repositories", f"{name}.cached", cached)
    env.config.save()
    env.shutdown()
    env = Environment(str(parent / "hub"))
    for repos in RepositoryManager(env).get_real_repositories():
        repos.sync()
    env.shutdown()
    yield Site(root, parent, rules, shared, loaded)


def hub(site: Site) -> Any:
    return open_environment(str(site.hub), use_cache=True)


def request(env: Any, user: str, path_info: str, **args: str) -> Any:
    return MockRequest(env, authname=user, path_info=path_info, args=args)


def page(env: Any, module: Any, user: str, path_info: str, **args: str) -> str | None:
    """What a Trac request handler renders for `user`; None: 403 (PermissionError)."""
    from trac.web.chrome import Chrome

    req = request(env, user, path_info, **args)
    assert module.match_request(req)
    try:
        template, data, *rest = module.process_request(req)
    except PermissionError:
        return None
    metadata = dict(rest[0] if rest else {}, iterable=False)
    return Chrome(env).render_template(req, template, data, metadata).decode()


# -- What Trac is configured with --------------------------------------------------


def test_projects_read_the_rule_file_with_authz_policy_first(site: Site):
    env = hub(site)
    assert env.config.get("svn", "authz_file") == str(site.rules)
    policies = env.config.getlist("trac", "permission_policies")
    assert policies[:2] == ["AuthzSourcePolicy", "AuthzChangesetPolicy"]
    from trac.perm import PermissionSystem

    names = [type(p).__name__ for p in PermissionSystem(env).policies]
    assert names[:3] == ["AuthzSourcePolicy", "AuthzChangesetPolicy", "DefaultWikiPolicy"]


def test_each_repository_s_scope_is_its_place_in_the_tree(site: Site):
    manager = RepositoryManager(hub(site))
    scopes = {name: manager.get_repository(name).scope for name in ("alpha", "beta", "public")}
    assert scopes == {"alpha": "/alpha/trunk", "beta": "/beta/trunk", "public": "/public"}
    # The cached wrapper (alpha, beta) hands Trac the backend's scope.
    assert type(manager.get_repository("alpha")).__name__ == "BzrCachedRepository"


def test_scope_outside_the_tree_or_without_a_root_is_the_repository_s_own(tmp_path: Path):
    from trac_breezy.trac_app.bzr.naming import tree_scope

    (tmp_path / "tree" / "a" / "b").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "tree" / "link").symlink_to(tmp_path / "tree" / "a")
    tree = str(tmp_path / "tree")
    assert tree_scope(f"{tree}/a/b", tree) == "/a/b"
    assert tree_scope(f"{tree}/link/b", tree) == "/a/b"  # where it really is
    assert tree_scope(tree, tree) == "/"
    assert tree_scope(str(tmp_path / "elsewhere"), tree) == "/"
    assert tree_scope(f"{tree}-x", tree) == "/"
    assert tree_scope(f"{tree}/a", "") == "/"


# -- Trac's decisions ----------------------------------------------------------------


@pytest.mark.parametrize("user", USERS)
def test_browser_log_and_changeset_permissions(site: Site, user: str):
    env = hub(site)
    perm = PermissionCache(env, user)
    for name in ("alpha", "beta", "public"):
        repos = Resource("repository", name)
        root_dir = "trunk" if name == "public" else ""
        expected = name in READS[user]
        assert ("BROWSER_VIEW" in perm(repos.child("source", root_dir))) is expected, name
        assert ("LOG_VIEW" in perm(repos.child("source", root_dir))) is expected, name
        file = f"{root_dir}/hello.txt" if name == "public" else f"{name}.txt"
        assert ("FILE_VIEW" in perm(repos.child("source", file))) is expected, name
        rev = RepositoryManager(env).get_repository(name).youngest_rev
        assert ("CHANGESET_VIEW" in perm(repos.child("changeset", rev))) is expected, name


@pytest.mark.parametrize("user", USERS)
def test_trac_pages_show_or_refuse(site: Site, user: str):
    from trac.versioncontrol.web_ui.browser import BrowserModule
    from trac.versioncontrol.web_ui.changeset import ChangesetModule
    from trac.versioncontrol.web_ui.log import LogModule

    env = hub(site)
    for name in ("alpha", "beta"):
        readable = name in READS[user]
        browser = page(env, BrowserModule(env), user, f"/browser/{name}")
        assert (browser is not None and f"{name}.txt" in browser) is readable, name
        log = page(env, LogModule(env), user, f"/log/{name}")
        assert (log is not None and MESSAGES[name] in log) is readable, name
        changeset = page(env, ChangesetModule(env), user, f"/changeset/1/{name}")
        assert (changeset is not None and MESSAGES[name] in changeset) is readable, name
    public = page(env, BrowserModule(env), user, "/browser/public/trunk")
    assert public is not None and "hello.txt" in public
    # The repository index lists only what the user may browse.
    index = page(env, BrowserModule(env), user, "/browser")
    assert index is not None
    for name in ("alpha", "beta", "public"):
        assert (f'href="/trac.cgi/browser/{name}"' in index) is (name in READS[user]), name


@pytest.mark.parametrize("user", USERS)
def test_timeline_and_search_show_only_readable_changesets(site: Site, user: str):
    from trac.timeline.web_ui import TimelineModule
    from trac.versioncontrol.web_ui.changeset import ChangesetModule

    env = hub(site)
    req = request(env, user, "/timeline")
    events = ChangesetModule(env).get_timeline_events(
        req, datetime(2000, 1, 1, tzinfo=utc), datetime(2100, 1, 1, tzinfo=utc), ["changeset"]
    )
    # Each event's data: (changesets, ...), each changeset (cset, resource, repositories).
    shown = " ".join(cset.message for event in events for cset, *_ in event[3][0])
    for name, message in MESSAGES.items():
        assert (message in shown) is (name in READS[user]), (name, shown)
    timeline = page(
        env,
        TimelineModule(env),
        user,
        "/timeline",
        **{"from": "2024-03-02", "daysback": "5", "changeset": "on"},
    )
    assert timeline is not None
    for name, message in MESSAGES.items():
        assert (message in timeline) is (name in READS[user]), name
    # Search reads changesets from Trac's cache (alpha and beta are cached).
    found = ChangesetModule(env).get_search_results(req, ["plan", "roadmap"], ["changeset"])
    titles = " ".join(str(result[1]) for result in found)
    found_any = ChangesetModule(env).get_search_results(req, ["a"], ["changeset"])
    titles += " ".join(str(result[1]) for result in found_any)
    for name in ("alpha", "beta"):
        assert (MESSAGES[name] in titles) is (name in READS[user]), (name, titles)


# -- Projects with their own policies ------------------------------------------------


def test_a_project_with_its_own_policies_gets_authz_first_and_does_not_leak(site: Site, capsys):
    own = site.parent / "own"
    options = [
        ("trac", "database", "sqlite:db/trac.db"),
        ("components", "trac_breezy.*", "enabled"),
    ]
    env = Environment(str(own), create=True, options=options)
    env.config.set("trac", "permission_policies", "DefaultWikiPolicy, DefaultPermissionPolicy")
    env.config.set("svn", "authz_file", "/somewhere/else")
    env.config.save()
    DbRepositoryProvider(env).add_repository("alpha", str(site.root / "alpha" / "trunk"), "bzr")
    env.shutdown()
    global_config.update_all(site.loaded, site.shared)
    lines = [line for line in capsys.readouterr().err.splitlines() if "own:" in line]
    (line,) = lines
    assert "removed its own [svn] authz_file (AUTHZ_FILE wins)" in line
    assert (
        "put AuthzSourcePolicy, AuthzChangesetPolicy first in its own [trac] permission_policies"
        in line
    )
    assert "keeps its own" not in line
    env = Environment(str(own))
    assert env.config.getlist("trac", "permission_policies") == [
        "AuthzSourcePolicy",
        "AuthzChangesetPolicy",
        "DefaultWikiPolicy",
        "DefaultPermissionPolicy",
    ]
    assert env.config.get("svn", "authz_file") == str(site.rules)
    source = Resource("repository", "alpha").child("source", "")
    assert "BROWSER_VIEW" not in PermissionCache(env, "bob")(source)
    assert "BROWSER_VIEW" in PermissionCache(env, "alice")(source)
    env.shutdown()
    global_config.update_all(site.loaded, site.shared)  # nothing more to do
    assert "own:" not in capsys.readouterr().err

    # AUTHZ_FILE unset: the policy that would fail without a file is taken out.
    off = settings.load({"BZR_ROOT": str(site.root), "TRAC_ENV_PARENT_DIR": str(site.parent)})
    with_rules = site.shared.read_text()
    try:
        site.shared.write_text(trac_ini.render(off, ()))
        global_config.update_all(off, site.shared)
    finally:
        site.shared.write_text(with_rules)
    err = capsys.readouterr().err
    assert "own: took AuthzSourcePolicy, AuthzChangesetPolicy out of its own" in err
    env = Environment(str(own))
    assert env.config.getlist("trac", "permission_policies") == [
        "DefaultWikiPolicy",
        "DefaultPermissionPolicy",
    ]
    env.shutdown()
    for line in err.splitlines():  # hub inherits its policies: never touched
        assert "hub:" not in line or "AuthzSourcePolicy" not in line


# -- The file is reread when it changes -------------------------------------------


def test_trac_rereads_the_rule_file_when_it_changes(site: Site):
    env = hub(site)
    source = Resource("repository", "alpha").child("source", "")
    assert "BROWSER_VIEW" not in PermissionCache(env, "bob")(source)
    before = site.rules.stat().st_mtime
    try:
        site.rules.write_text(RULES.replace("bob = rw", "bob = rw\n\n[/alpha/trunk]\nbob = r"))
        os.utime(site.rules, (before + 10, before + 10))
        assert "BROWSER_VIEW" in PermissionCache(env, "bob")(source)
    finally:
        site.rules.write_text(RULES)
        os.utime(site.rules, (before + 20, before + 20))
    assert "BROWSER_VIEW" not in PermissionCache(env, "bob")(source)


# -- Pages for browsers --------------------------------------------------------------


def environ_for(site: Site, uri: str, user: str | None = None) -> dict[str, Any]:
    environ = {
        "REQUEST_METHOD": "GET",
        "REQUEST_URI": uri,
        "PATH_INFO": "/" if uri.startswith("/trac") else "",
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "localhost:8080",
        "trac_breezy.trac_url": "/trac",
        "trac_breezy.env_parent_dir": str(site.parent),
        "trac_breezy.bzr_url": "/bzr",
        "trac_breezy.bzr_root": str(site.root),
        "trac_breezy.bzr_mode": READ_WRITE,
        "trac_breezy.anonymous_read": "yes",
        "trac_breezy.authz_file": str(site.rules),
        "wsgi.input": io.BytesIO(),
    }
    if user:
        environ["REMOTE_USER"] = user
    return environ


def call(application: Any, environ: dict[str, Any]) -> tuple[str, dict[str, str], str]:
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer.update(status=status, headers=dict(headers))

    body = b"".join(application(environ, start_response)).decode()
    return answer["status"], answer["headers"], body


def test_the_front_page_lists_only_what_anonymous_may_read(site: Site):
    front_projects._cache.clear()
    found = front_projects.projects(str(site.parent), "/trac", str(site.root), str(site.rules))
    (hub_project,) = [p for p in found if p.slug == "hub"]
    assert [r.name for r in hub_project.repositories] == ["public"]
    assert [b.relpath for b in hub_project.repositories[0].branches] == ["public/trunk"]
    # Latest activity goes through Trac's permissions, which read the same file.
    env = hub(site)
    anonymous = PermissionCache(env, "anonymous")
    events = latest_changesets(env, anonymous, Href("/trac/hub"), ["alpha", "beta", "public"])
    assert [event.detail for event in events] == [MESSAGES["public"]]
    status, _, body = call(app.front_page(pytest.fail), environ_for(site, "/trac/"))
    assert status == "200 OK"
    assert "bzr+http://localhost:8080/bzr/public/trunk" in body
    assert "/bzr/alpha/trunk" not in body and "/bzr/beta/trunk" not in body
    assert MESSAGES["alpha"] not in body and MESSAGES["beta"] not in body
    # Without the rule file, everything is listed, as before.
    unfiltered = front_projects.projects(str(site.parent), "/trac", str(site.root))
    (hub_all,) = [p for p in unfiltered if p.slug == "hub"]
    assert [r.name for r in hub_all.repositories] == ["alpha", "beta", "public"]


@pytest.mark.parametrize(
    ("user", "listed"),
    [
        ("alice", ["alpha/trunk", "beta/trunk", "public/trunk"]),
        ("bob", ["beta/trunk", "public/trunk"]),
        (None, ["public/trunk"]),
    ],
)
def test_the_tree_s_root_page_lists_what_its_visitor_may_read(site: Site, user, listed):
    status, _, body = call(app.folder_pages, environ_for(site, "/bzr/", user))
    assert status == "200 OK"
    for branch in ("alpha/trunk", "beta/trunk", "public/trunk"):
        assert (f"/bzr/{branch}/" in body) is (branch in listed), branch
    for folder in ("alpha", "beta", "public"):
        shown = any(branch.startswith(folder) for branch in listed)
        assert (f'href="/bzr/{folder}/"' in body) is shown, folder


def test_a_folder_the_visitor_may_not_read_is_a_login_or_not_found(site: Site):
    status, headers, body = call(app.folder_pages, environ_for(site, "/bzr/alpha/trunk/"))
    assert status == "401 Unauthorized"
    assert headers["WWW-Authenticate"] == 'Basic realm="trac-breezy"'
    assert MESSAGES["alpha"] not in body
    # The same for a folder that does not exist: the answer tells nothing.
    assert call(app.folder_pages, environ_for(site, "/bzr/alpha/nothing/"))[0].startswith("401")
    status, _, body = call(app.folder_pages, environ_for(site, "/bzr/alpha/trunk/", "bob"))
    assert status == "404 Not Found" and MESSAGES["alpha"] not in body
    missing = call(app.folder_pages, environ_for(site, "/bzr/beta/nothing/", "bob"))
    assert missing[0] == "404 Not Found" and missing[2] == body.replace(
        "alpha/trunk", "beta/nothing"
    )
    status, _, body = call(app.folder_pages, environ_for(site, "/bzr/alpha/trunk/", "alice"))
    assert status == "200 OK" and MESSAGES["alpha"] in body
    status, _, body = call(app.folder_pages, environ_for(site, "/bzr/public/trunk/"))
    assert status == "200 OK" and MESSAGES["public"] in body
