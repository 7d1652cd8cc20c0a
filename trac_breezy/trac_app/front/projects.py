"""What the front page shows of each Trac project: name, description, links,
latest activity, and the Bazaar branches its repositories show.

Why this exists: Trac's project index hands its template only each
project's name and description (and the environment object); the rest is
Python work on each project: its repositories, their branches' places in the
tree, what `anonymous` may see. Projects are found as Trac's index finds
them (`get_environments`: every directory under the parent, `.tracignore`
honoured) and opened from Trac's environment cache. A warm summary costs a
few milliseconds per project (a handful of one-row queries, the newest
changeset from the backend's caches, a walk for branches); it is kept for
`CACHE_SECONDS` in each daemon process, so that a burst of visitors costs one
summary per project, while a push or a new ticket shows on the next page
after that. (The healthcheck renders the page every 5 s like any visitor.)

With a rule file (AUTHZ_FILE), only the repositories and branches that
anonymous may read are listed (`access`); the latest activity goes through
Trac's permissions, where AuthzSourcePolicy applies the same file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading
import time
from dataclasses import dataclass

from trac.env import Environment, open_environment
from trac.perm import PermissionCache
from trac.util.concurrency import get_thread_id
from trac.util.text import exception_to_unicode
from trac.versioncontrol.api import RepositoryManager
from trac.web.href import Href
from trac.web.main import get_environments

from trac_breezy.trac_app.bzr.repository import REPOS_TYPE
from trac_breezy.trac_app.bzr.storage import find_branches
from trac_breezy.trac_app.front.access import EVERYONE, Visitor, visitor
from trac_breezy.trac_app.front.activity import Event, latest

CACHE_SECONDS = 2.0
# The password of a URI in a message (Trac quotes `[trac] database` whole when
# it cannot parse it: "Invalid format postgres://trac:pass/word@db/trac").
URI_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/:@\s<>]*:)[^@\s<>]*@", re.IGNORECASE)


@dataclass(frozen=True)
class Branch:
    """One branch of a project's repository."""

    label: str  # its path in the repository ("trunk"), or "" for a lone branch
    relpath: str | None  # its path below the tree's root; None: outside the tree
    browser: str  # URL path of its root in Trac's browser
    title: str  # what the front page calls it


@dataclass(frozen=True)
class Repository:
    """A `bzr` repository of a project: a branch, or a folder of branches."""

    name: str  # "" for the default repository
    relpath: str | None  # its folder below the tree's root; None: outside the tree
    browser: str
    exists: bool  # False: nothing pushed there yet
    branches: tuple[Branch, ...]


@dataclass(frozen=True)
class Project:
    slug: str  # the directory name: /trac/<slug>
    name: str
    description: str
    href: str
    links: tuple[tuple[str, str], ...] = ()  # (label, URL path) into the project
    latest: Event | None = None
    repositories: tuple[Repository, ...] = ()
    error: str | None = None  # the project cannot be opened; why


def tree_relpath(path: str, root: str) -> str | None:
    """`path` below the tree's `root` ("" for the root), or None outside it."""
    path, root = os.path.normpath(path), os.path.normpath(root)
    if path == root:
        return ""
    if os.path.commonpath([path, root]) != root:
        return None
    return os.path.relpath(path, root).replace(os.sep, "/")


def join(relpath: str | None, label: str) -> str | None:
    if relpath is None or not label:
        return relpath
    return f"{relpath}/{label}" if relpath else label


def repository(name: str, directory: str, bzr_root: str, href: Href) -> Repository:
    """What a repository's directory holds: one branch, or branches below it."""
    relpath = tree_relpath(directory, bzr_root)
    browser = href.browser(name or None)
    if os.path.isdir(os.path.join(directory, ".bzr", "branch")):
        labels = [""]
    elif os.path.isdir(directory):
        labels = find_branches(directory)
    else:
        return Repository(name, relpath, browser, exists=False, branches=())
    branches = tuple(
        Branch(
            label,
            join(relpath, label),
            href.browser(name or None, label or None),
            title=label or name or (relpath or "").rpartition("/")[2] or "(default)",
        )
        for label in labels
    )
    return Repository(name, relpath, browser, exists=True, branches=branches)


def rule_place(repos: Repository, label: str = "") -> str:
    """Where the rules find a repository or one of its branches: its place in
    the tree, or for a repository outside it its own path (its scope is "/"
    in Trac, too)."""
    return "/".join(part for part in (repos.relpath or "", label) if part)


def seen_by(repos: Repository, who: Visitor) -> Repository | None:
    """`repos` with only the branches `who` may read; None if it shows nothing to them."""
    if not who.may_see(rule_place(repos)):
        return None
    branches = tuple(b for b in repos.branches if who.may_see_branch(rule_place(repos, b.label)))
    if repos.branches and not branches:
        return None
    return dataclasses.replace(repos, branches=branches)


def repositories(
    env: Environment, bzr_root: str, href: Href, who: Visitor = EVERYONE
) -> tuple[Repository, ...]:
    """The project's visible `bzr` repositories, by name (the default first),
    with what `who` may read of them."""
    manager = RepositoryManager(env)
    found = []
    for name, info in sorted(manager.get_all_repositories().items()):
        kind = info.get("type") or manager.default_repository_type
        if info.get("alias") or info.get("hidden") or kind != REPOS_TYPE or not info.get("dir"):
            continue
        shown = seen_by(repository(name, info["dir"], bzr_root, href), who)
        if shown is not None:
            found.append(shown)
    return tuple(found)


def links(perm: PermissionCache, href: Href, has_source: bool) -> tuple[tuple[str, str], ...]:
    """The project's main pages that `anonymous` may open."""
    pages = [
        ("WIKI_VIEW", "Wiki", href.wiki()),
        ("TIMELINE_VIEW", "Timeline", href.timeline()),
        ("TICKET_VIEW", "Tickets", href.report()),
        ("BROWSER_VIEW", "Browse source", href.browser()),
    ]
    return tuple(
        (label, url)
        for action, label, url in pages
        if action in perm and (action != "BROWSER_VIEW" or has_source)
    )


def summarize(
    slug: str, env: Environment, trac_url: str, bzr_root: str, authz_file: str = ""
) -> Project:
    href = Href(trac_url)(slug)
    project_href = Href(href)
    perm = PermissionCache(env, "anonymous")
    anonymous = visitor(authz_file)
    repos = repositories(env, bzr_root, project_href, anonymous) if "BROWSER_VIEW" in perm else ()
    return Project(
        slug=slug,
        name=env.project_name,
        description=env.project_description,
        href=href,
        links=links(perm, project_href, bool(repos)),
        latest=latest(env, project_href, [r.name for r in repos if r.exists]),
        repositories=repos,
    )


def start_errors(errors_file: str) -> dict[str, str]:
    """Why the start left projects unserved (admin/migrate.py writes the file)."""
    if not errors_file:
        return {}
    try:
        with open(errors_file, encoding="utf-8") as file:
            found = json.load(file)
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def without_passwords(text: str) -> str:
    """`text` with the password of each URI in it hidden: anyone sees the front page."""
    return URI_PASSWORD.sub(r"\1***@", text)


def load(
    slug: str, path: str, trac_url: str, bzr_root: str, authz_file: str = "", errors_file: str = ""
) -> Project:
    try:
        env = open_environment(path, use_cache=True)
    except Exception as e:  # what Trac's own index shows, too, unless the start said more
        error = start_errors(errors_file).get(slug) or exception_to_unicode(e)
        return Project(slug, slug, "", Href(trac_url)(slug), error=without_passwords(error))
    try:
        return summarize(slug, env, trac_url, bzr_root, authz_file)
    except Exception as e:
        env.log.warning("front page: cannot summarize %s: %s", slug, exception_to_unicode(e))
        return Project(slug, env.project_name, env.project_description, Href(trac_url)(slug))
    finally:
        env.shutdown(get_thread_id())  # this thread's repositories and connection


_cache: dict[tuple[str, str, str, str], tuple[float, Project]] = {}
_cache_lock = threading.Lock()


def projects(
    env_parent_dir: str, trac_url: str, bzr_root: str, authz_file: str = "", errors_file: str = ""
) -> list[Project]:
    """Every project under `env_parent_dir`, by name; each at most
    CACHE_SECONDS old. With `authz_file`, only what anonymous may read of
    the tree is listed."""
    environ = {"trac.env_parent_dir": env_parent_dir}
    found = []
    now = time.monotonic()
    for slug, path in get_environments(environ).items():
        key = (path, trac_url, bzr_root, authz_file)
        with _cache_lock:
            cached = _cache.get(key)
        if cached is None or now - cached[0] > CACHE_SECONDS:
            cached = (now, load(slug, path, trac_url, bzr_root, authz_file, errors_file))
            with _cache_lock:
                _cache[key] = cached
        found.append(cached[1])
    with _cache_lock:  # forget removed projects
        for key in [k for k in _cache if now - _cache[k][0] > 10 * CACHE_SECONDS]:
            del _cache[key]
    return sorted(found, key=lambda project: project.name.lower())


def showing(all_projects: list[Project], relpath: str) -> list[tuple[Project, str]]:
    """(project, URL path in its browser) of each project whose repositories
    show the tree's folder `relpath` (a branch, or a folder of branches)."""
    found: dict[tuple[str, str], Project] = {}
    for project in all_projects:
        for repos in project.repositories:
            places = [(repos.relpath, repos.browser)]
            places += [(branch.relpath, branch.browser) for branch in repos.branches]
            for place, url in places:
                if place == relpath:
                    found.setdefault((project.slug, url), project)
    return [(project, url) for (_slug, url), project in found.items()]
