"""Pushes update Trac: announce new revisions of a pushed branch to its Trac projects.

Breezy runs `post_change_branch_tip` hooks inside the smart server whenever a
request moves a branch tip (push, commit from a checkout, uncommit, ...). The
hook finds the Trac environments (under the Trac parent directory) that have a
`bzr` repository at that branch, or at a shared repository / folder that holds
it, and announces the new revisions the standard way,
`RepositoryManager.notify('changeset_added', ...)` (see
`trac_breezy.bzr_backend.notify_new_revisions`), so `CommitTicketUpdater`
comments on "refs #N" tickets and closes "fixes #N" ones.

A failure here is logged and never fails the push: the revisions are safe in
the branch, and `trac-admin ENV changeset added REPO REV` can replay them.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from breezy.branch import Branch
from breezy.revision import NULL_REVISION

from trac_breezy import log

HOOK_NAME = "trac-breezy: announce new revisions to Trac"

# chroot URL prefix of each smart-server app -> (local root, Trac parent dir)
_roots: dict[str, tuple[str, str]] = {}
_lock = threading.Lock()
_installed = False
_pending: list[threading.Thread] = []


def register_root(chroot_url: str, root: str, trac_parent: str | None) -> None:
    """Called by each SmartApp: branches under `chroot_url` live in `root`."""
    global _installed
    with _lock:
        if trac_parent:
            _roots[chroot_url] = (root, trac_parent)
        if not _installed:
            Branch.hooks.install_named_hook("post_change_branch_tip", on_tip_change, HOOK_NAME)
            _installed = True


def local_path(branch_url: str) -> tuple[str, str] | None:
    """(local path of the branch, Trac parent dir), or None if not ours."""
    for prefix, (root, trac_parent) in _roots.items():
        if branch_url.startswith(prefix):
            from breezy import urlutils

            relpath = urlutils.unescape(branch_url[len(prefix) :]).strip("/")
            return os.path.join(root, relpath) if relpath else root, trac_parent
    return None


def new_revisions(branch: Any, old_revid: bytes, new_revid: bytes) -> list[bytes]:
    """Revisions now in the branch that were not before: mainline oldest first, then merged."""
    if new_revid in (None, NULL_REVISION):
        return []
    old = old_revid or NULL_REVISION
    graph = branch.repository.get_graph()
    unique = graph.find_unique_ancestors(new_revid, [old])
    mainline = [
        r for r in reversed(list(graph.iter_lefthand_ancestry(new_revid, [old]))) if r in unique
    ]
    return mainline + sorted(unique.difference(mainline))


def trac_repositories(trac_parent: str, branch_path: str) -> list[tuple[str, str]]:
    """(env path, repository name) of every bzr repository that shows `branch_path`."""
    from trac.env import open_environment
    from trac.versioncontrol.api import RepositoryManager

    found = []
    real_branch = os.path.realpath(branch_path)
    for name in sorted(os.listdir(trac_parent)):
        env_path = os.path.join(trac_parent, name)
        if not os.path.isfile(os.path.join(env_path, "VERSION")):
            continue
        env = open_environment(env_path, use_cache=True)
        for repo_name, info in RepositoryManager(env).get_all_repositories().items():
            repo_dir = info.get("dir")
            if info.get("type") != "bzr" or not repo_dir:
                continue
            real_repo = os.path.realpath(repo_dir)
            if real_branch == real_repo or real_branch.startswith(real_repo + os.sep):
                found.append((env_path, repo_name))
    return found


def on_tip_change(params: Any) -> None:
    """The Breezy hook (see the module docstring).

    It only works out which revisions are new; Trac is told in a thread of its
    own, because the request thread is jailed to the smart server's chroot
    (Trac opens branches by local path) and the push need not wait for Trac.
    """
    try:
        located = local_path(params.branch.base)
        if located is None:
            return
        revids = new_revisions(params.branch, params.old_revid, params.new_revid)
    except Exception as error:  # a push must never fail because of Trac
        log(f"announcing a push to Trac failed: {error!r}")
        return
    if revids:
        revs = ["revid:" + revid.decode("utf-8") for revid in revids]
        thread = threading.Thread(target=announce, args=(*located, revs), name="announce-push")
        with _lock:
            _pending.append(thread)
        thread.start()


def announce(branch_path: str, trac_parent: str, revs: list[str]) -> None:
    """Tell every Trac repository showing `branch_path` about `revs`."""
    try:
        from trac_breezy.bzr_backend import notify_new_revisions

        for env_path, repo_name in trac_repositories(trac_parent, branch_path):
            for error in notify_new_revisions(env_path, repo_name, revs):
                log(f"{env_path}: {error}")
    except Exception as error:  # logged; the push itself has succeeded
        log(f"announcing a push to Trac failed: {error!r}")
    finally:
        with _lock:
            _pending.remove(threading.current_thread())


def wait_for_announcements(timeout: float = 60) -> None:
    """Wait until every announcement started so far is done (for tests)."""
    with _lock:
        pending = list(_pending)
    for thread in pending:
        thread.join(timeout)
