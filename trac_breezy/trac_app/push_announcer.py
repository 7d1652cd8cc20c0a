"""Pushes update Trac: announce new revisions of a pushed branch to its Trac projects.

The smart server (`trac_breezy.smart_server.tip_changes`) knows nothing of
Trac: it reports that a request moved a branch tip. This is Trac's half,
registered as a listener in `wsgi/bzr.wsgi`. It finds the Trac environments
(under the Trac parent directory named by the pushing request's `SetEnv
trac.env_parent_dir`) that have a `bzr` repository at that branch, or at a
shared repository / folder that holds it, and announces the new revisions the
standard way, `RepositoryManager.notify('changeset_added', ...)` (see
`trac_breezy.trac_app.bzr.connector.notify_new_revisions`), so
`CommitTicketUpdater` comments on "refs #N" tickets and closes "fixes #N" ones.

Trac is told in a thread of its own, because the request thread is jailed to
the smart server's chroot (Trac opens branches by local path) and the push
need not wait for Trac, nor for working out which revisions are new (done
there too, and only when a project shows the branch). A failure is logged
and never fails the push: the revisions are safe in the branch, and
`trac-admin ENV changeset added REPO REV` can replay them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Protocol

from breezy.branch import Branch
from trac.env import open_environment
from trac.versioncontrol.api import RepositoryManager

from trac_breezy import log
from trac_breezy.setenv import TRAC_ENV_PARENT_DIR_KEY, SmartServerEnviron


class TipChange(Protocol):
    """What the announcer reads of `smart_server.tip_changes.TipChange`.

    Only its shape: Trac's side never imports the smart server.
    """

    @property
    def branch_path(self) -> str: ...
    @property
    def environ(self) -> Mapping[str, str]: ...
    @property
    def has_new_tip(self) -> bool: ...
    def new_revisions(self, open_branch: Callable[[str], Branch]) -> tuple[bytes, ...]: ...


_lock = threading.Lock()
_pending: list[threading.Thread] = []


def _shows(repo_dir: str, real_branch: str) -> bool:
    """Whether a repository at `repo_dir` holds the branch at `real_branch`."""
    real_repo = os.path.realpath(repo_dir)
    return real_branch == real_repo or real_branch.startswith(real_repo + os.sep)


def trac_repositories(trac_parent: str, branch_path: str) -> list[tuple[str, str]]:
    """(env path, repository name) of every bzr repository that shows `branch_path`."""
    found = []
    real_branch = os.path.realpath(branch_path)
    for name in sorted(os.listdir(trac_parent)):
        env_path = os.path.join(trac_parent, name)
        if not os.path.isfile(os.path.join(env_path, "VERSION")):
            continue
        env = open_environment(env_path, use_cache=True)
        for repo_name, info in RepositoryManager(env).get_all_repositories().items():
            repo_dir = info.get("dir")
            if info.get("type") == "bzr" and repo_dir and _shows(repo_dir, real_branch):
                found.append((env_path, repo_name))
    return found


def announce(change: TipChange) -> None:
    """The tip-change listener: tell Trac about `change` in a thread of its own."""
    trac_parent = change.environ.get(TRAC_ENV_PARENT_DIR_KEY)
    if not trac_parent or not change.has_new_tip:
        return
    thread = threading.Thread(target=_announce, args=(trac_parent, change), name="announce-push")
    with _lock:
        _pending.append(thread)
    thread.start()


def _announce(trac_parent: str, change: TipChange) -> None:
    """Tell every Trac repository showing the branch of `change` about its new revisions."""
    try:
        from trac_breezy.authz import rule_file
        from trac_breezy.trac_app.bzr.confinement import open_branch, rule_check
        from trac_breezy.trac_app.bzr.connector import notify_new_revisions

        repositories = trac_repositories(trac_parent, change.branch_path)
        if not repositories:
            return  # no project shows the branch: no need to walk its graph
        # Inside the tree the push was served from, as Trac opens branches:
        # the pusher wrote this branch's stacked-on URL and references.
        # References and stacking are followed only where the rules let readers go.
        served = SmartServerEnviron.from_environ(change.environ)
        tree = served.root
        rules = rule_file(served.authz_file).rules if served.authz_file else None
        follow = rule_check(tree, rules) if rules else None
        opened = change.new_revisions(lambda path: open_branch(path, tree, follow))
        revs = ["revid:" + revid.decode("utf-8") for revid in opened]
        for env_path, repo_name in repositories:
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
