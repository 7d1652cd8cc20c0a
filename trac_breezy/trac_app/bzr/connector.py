"""The Trac side of the Bazaar backend: the components Trac loads.

Why this module exists: it is the Trac plugin entry point.  Loading it
registers every component of the backend (:class:`BzrConnector`, which
hands Trac a repository of type ``bzr``, and :class:`BzrPropertyRenderer`);
it also holds the cached mode (:class:`BzrCachedRepository`) and
:func:`notify_new_revisions` for push hooks.  The package docstring says
which module does what.

Why the backend exists (TracBzr died with Python 2 and bzrlib; this package
implements Trac's ``trac.versioncontrol.api`` on Breezy) and its design:
what a repository ``dir`` may be, revision strings, order, read-only
access, caches, memory, cached or direct mode and known limits are in
docs/architecture.md, "The Bazaar backend of Trac".

Trac plugin entry point (``[project.entry-points."trac.plugins"]``):
``"trac_breezy.bzr" = "trac_breezy.trac_app.bzr.connector"``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import breezy
from trac.api import ISystemInfoProvider
from trac.config import BoolOption, Option
from trac.core import Component, TracError, implements
from trac.util import as_bool
from trac.util.html import tag
from trac.util.text import shorten_line
from trac.versioncontrol.api import (
    InvalidRepository,
    IRepositoryConnector,
    Repository,
    RepositoryManager,
    is_default,
)
from trac.versioncontrol.cache import CACHE_YOUNGEST_REV, CachedChangeset, CachedRepository
from trac.versioncontrol.web_ui.browser import IPropertyRenderer

from trac_breezy.authz import rule_file
from trac_breezy.trac_app.bzr.caches import LRU, process_cache
from trac_breezy.trac_app.bzr.confinement import FollowCheck, rule_check
from trac_breezy.trac_app.bzr.naming import inside_tree, is_head
from trac_breezy.trac_app.bzr.node import BzrChangeset
from trac_breezy.trac_app.bzr.repository import REPOS_TYPE, BzrRepository

__all__ = [
    "BzrCachedChangeset",
    "BzrCachedRepository",
    "BzrConnector",
    "BzrPropertyRenderer",
    "notify_new_revisions",
]

# The tips each cached repository was last synced at, by (env, id, name).
_synced_tips: LRU[tuple[str, int, str], Any] = process_cache(256)


# -- Cached mode -------------------------------------------------------------


class BzrCachedRepository(CachedRepository):
    """`CachedRepository` for Bazaar: string revisions and a set-based sync.

    Trac's own `sync` walks `next_rev` from the cached youngest revision,
    which would miss merged revisions and other branches; this one inserts
    every revision the database lacks.
    """

    repos: BzrRepository

    def normalize_rev(self, rev: object) -> str | None:
        if is_head(rev):
            return self.get_youngest_rev()
        return self.repos.normalize_rev(rev)

    def display_rev(self, rev: object) -> str | None:
        return self.repos.display_rev(self.normalize_rev(rev))

    def short_rev(self, rev: object) -> str | None:
        return self.repos.short_rev(self.normalize_rev(rev))

    def get_youngest_rev(self) -> str | None:
        return CachedRepository.get_youngest_rev(self) or None

    def get_changeset(self, rev: object) -> BzrCachedChangeset:
        return BzrCachedChangeset(self, self.normalize_rev(rev), self.env)

    def child_revs(self, rev: object) -> list[str]:
        return self.repos.child_revs(rev)

    def sync(self, feedback: Callable[[str], None] | None = None, clean: bool = False) -> None:
        if clean:
            self.remove_cache()
        metadata = self.metadata
        self.save_metadata(metadata)
        self.repos.clear()
        youngest = self.repos.youngest_rev or ""
        memo_key = (self.env.path, self.id, self.name)
        fingerprint = self.repos.tips_fingerprint()
        up_to_date = metadata.get(CACHE_YOUNGEST_REV) == youngest
        if up_to_date and (not self.repos.multi or _synced_tips.get(memo_key) == fingerprint):
            return
        with self.env.db_query as db:
            cached = {rev for (rev,) in db("SELECT rev FROM revision WHERE repos=%s", (self.id,))}
        for rev in self.repos.iter_revs():
            if rev in cached:
                continue
            changeset = self.repos.get_changeset(rev)
            try:
                with self.env.db_transaction:
                    self.insert_changeset(rev, changeset)
            except self.env.db_exc.IntegrityError as e:
                self.log.info("Revision %s already cached: %r", rev, e)
                continue
            if feedback:
                feedback(rev)
        if not up_to_date:
            with self.env.db_transaction as db:
                db(
                    "UPDATE repository SET value=%s WHERE id=%s AND name=%s",
                    (youngest, self.id, CACHE_YOUNGEST_REV),
                )
                del self.metadata
        _synced_tips.put(memo_key, fingerprint)


class BzrCachedChangeset(CachedChangeset):
    """A cached changeset that still asks the branch for branches and tags."""

    def get_branches(self) -> list[tuple[str, bool]]:
        changeset: BzrChangeset = self.repos.repos.get_changeset(self.rev)
        return changeset.get_branches()

    def get_tags(self) -> list[str]:
        changeset: BzrChangeset = self.repos.repos.get_changeset(self.rev)
        return changeset.get_tags()


# -- Components --------------------------------------------------------------


class BzrConnector(Component):
    """Serve Bazaar branches (repository type `bzr`) through Breezy."""

    implements(IRepositoryConnector, ISystemInfoProvider)

    cached_repository = BoolOption(
        "bzr",
        "cached_repository",
        "false",
        """Wrap Bazaar repositories in a `CachedRepository` (revision
        metadata copied into Trac's database by `sync`). Direct access is
        recommended: it is fast thanks to per-branch-tip caches and never
        shows stale data. A repository can override this with `cached` in
        the `[repositories]` section.""",
    )

    tree_root = Option(
        "bzr",
        "tree_root",
        "",
        """The top of the Bazaar tree that the smart server serves (BZR_ROOT;
        the shared trac.ini sets it). A repository below it has its place in
        the tree as its `scope` (`/alpha/trunk`), so the paths of the
        `[svn] authz_file` rules are the tree's paths, as in brz's URLs.
        A repository outside it (links followed) is refused. Empty: any
        directory, with the scope `/`.""",
    )

    # ISystemInfoProvider methods

    def get_system_info(self) -> Iterator[tuple[str, str]]:
        yield "Breezy", breezy.version_string

    # IRepositoryConnector methods

    def get_supported_types(self) -> Iterator[tuple[str, int]]:
        yield REPOS_TYPE, 8

    def get_repository(
        self, repos_type: str, repos_dir: str, params: dict[str, object]
    ) -> Repository:
        if not inside_tree(repos_dir, self.tree_root):
            name = params.get("name") or "(default)"
            raise InvalidRepository(
                f"Repository {name}: {repos_dir} is not inside the Bazaar tree {self.tree_root} "
                "(BZR_ROOT), where the access rules apply; point it at a directory in the tree"
            )
        repos = BzrRepository(repos_dir, params, self.log, self.tree_root, self._follow_check())
        if as_bool(params.get("cached", self.cached_repository)):
            return BzrCachedRepository(self.env, repos, self.log)
        return repos

    def _follow_check(self) -> FollowCheck | None:
        """References and stacked-on branches under `[svn] authz_file`, the rules
        Trac's `AuthzSourcePolicy` applies at the reference's place (None: no rules)."""
        authz_file = self.config.get("svn", "authz_file")
        if not authz_file or not self.tree_root:
            return None
        rules = rule_file(os.path.join(self.env.path, authz_file))
        return rule_check(self.tree_root, rules.rules)


class BzrPropertyRenderer(Component):
    """Render the revision lists of Bazaar changesets as changeset links."""

    implements(IPropertyRenderer)

    _names = ("Parents", "Merged", "Merged in")

    def match_property(self, name: str, mode: str) -> int:
        return 4 if name in self._names and mode == "revprop" else 0

    def render_property(self, name: str, mode: str, context: Any, props: dict[str, Any]) -> Any:
        reponame = context.resource.parent.id
        repos = RepositoryManager(self.env).get_repository(reponame)
        links = []
        for rev in props[name]:
            try:
                changeset = repos.get_changeset(rev)
                links.append(
                    tag.a(
                        repos.display_rev(rev),
                        class_="changeset",
                        title=shorten_line(changeset.message),
                        href=context.href.changeset(rev, repos.reponame or None),
                    )
                )
            except TracError as e:
                links.append(tag.a(rev, class_="missing changeset", title=str(e), rel="nofollow"))
            links.append(", ")
        return tag(*links[:-1])


# -- Hook support ------------------------------------------------------------


def notify_new_revisions(env_path: str, repo_name: str, revs: list[str]) -> list[str]:
    """Tell Trac about new revisions, e.g. from a post-push hook.

    Runs `changeset_added` listeners such as `CommitTicketUpdater` ("refs
    #N", "fixes #N") after syncing the repository if it is cached. `revs`
    are any revision strings the repository accepts. Returns Trac's error
    messages (empty on success).
    """
    from trac.env import open_environment
    from trac.util.concurrency import get_thread_id

    env = open_environment(env_path, use_cache=True)
    try:
        reponame = "" if is_default(repo_name) else repo_name
        return list(RepositoryManager(env).notify("changeset_added", reponame, list(revs)) or [])
    finally:
        env.shutdown(get_thread_id())
