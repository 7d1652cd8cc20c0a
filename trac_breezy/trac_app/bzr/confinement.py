"""Open a branch without leaving the directory of its Trac repository.

Why this exists: a Bazaar branch can lead elsewhere.  A branch reference
(``.bzr/branch/location``) names another branch by URL, a stacked branch
(``stacked_on_location`` in ``.bzr/branch/branch.conf``) reads revisions
from another branch's repository, and a symlink can put ``.bzr`` anywhere.
Anyone who may push can write those files with plain ``mkdir``/``put``
requests, so Breezy's ``Branch.open``, which follows all of them, would
let a pusher make an anonymous page view connect to any host (SSRF) or show
files from anywhere on the server's disk.

The rule: every branch and repository is opened at its real location
(`os.path.realpath`), which must be inside `root`, the ``dir`` of the Trac
repository (the branch itself, or the folder of branches).  References and
stacked-on locations are followed only to ``file:`` URLs inside `root`, at
most `MAX_HOPS` of them; any other URL is refused before a transport
exists, so nothing is ever connected to.  With access rules (AUTHZ_FILE),
each one is followed only when the rules let everyone who may read the
branch read the target too (`rule_check`): the rules are checked where a
reader asks, and whoever may push there chooses where a reference leads.
The one place outside `root` a repository may be is the *shared repository
of a directory containing root* (what Breezy finds by walking up from a
branch that has no repository of its own, as in ``code=code/trunk``): the
administrator's layout, not something a branch names.

Breezy's own `breezy.url_policy_open.BranchOpener` checks references first
and then opens the branch afresh, which follows a reference written in
between; here the branch format read once decides, and fallbacks are
opened by this module, not by Breezy.  No Trac imports.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from breezy import errors as bzr_errors
from breezy import urlutils
from breezy.branch import UnstackableBranchFormat
from breezy.bzr import BzrProber
from breezy.bzr.branch import BranchReferenceFormat
from breezy.controldir import ControlDir
from breezy.transport import get_transport_from_path

if TYPE_CHECKING:  # Breezy's classes, for their types only
    from breezy.branch import Branch
    from breezy.repository import Repository

# References and stacked-on branches followed from one branch, at most.
MAX_HOPS = 8

# May the branch at the first real path lead its readers to the second (a
# reference, a stacked-on branch)? None: yes; else why not. (`rule_check`.)
FollowCheck = Callable[[str, str], "str | None"]


class Refused(Exception):
    """A branch leads outside its repository directory; the message says how."""


def inside(path: str, root: str) -> bool:
    """Is the real path `path` the real directory `root` or below it?"""
    return os.path.commonpath([path, root]) == root


def open_branch(path: str, root: str, follow: FollowCheck | None = None) -> Branch:
    """The branch at `path`, with its repository and fallbacks, all inside `root`.

    `follow`, if given, must also let each branch lead to the next (the
    access rules, `rule_check`).

    :raise Refused: if anything it needs is outside `root` (real paths).
    :raise breezy.errors.BzrError: (e.g. NotBranchError) as Breezy raises it.
    """
    return _open(path, os.path.realpath(root), hops=0, follow=follow)


def rule_check(tree_root: str, rules_of: Callable[[], Any]) -> FollowCheck:
    """A `FollowCheck` by the access rules (`trac_breezy.authz.Rules.may_lead`) of
    the tree at `tree_root`; `rules_of()` gives the rules in force (None: no rules).

    Why: the rules are checked where a reader asks (the reference's place);
    a reference or stacked-on location written there by anyone who may
    push would otherwise show them a branch the rules refuse them.
    """
    top = os.path.realpath(tree_root)

    def check(source: str, target: str) -> str | None:
        rules = rules_of()
        if rules is None:
            return None
        places = [os.path.realpath(p) for p in (source, target)]
        if not all(inside(place, top) for place in places):
            return f'it leads outside the tree "{top}"; not followed'
        source_place, target_place = (_tree_place(place, top) for place in places)
        if rules.may_lead(source_place, target_place):
            return None
        # (The target is not named: the rules may hide its name from this reader.)
        return "it leads to a branch that the access rules let fewer people read; not followed"

    return check


def _open(path: str, root: str, hops: int, follow: FollowCheck | None = None) -> Branch:
    """`open_branch`, `hops` references or stackings away from the branch asked for.

    The branch format is read once and decides: a reference is followed
    here, and a branch is opened without its fallbacks, which are then
    opened here, so nothing Breezy would follow on its own is left.
    """
    if hops > MAX_HOPS:
        raise Refused(f"it leads through more than {MAX_HOPS} references or stacked branches")
    real = _real_place(path, root)
    controldir = ControlDir.open_from_transport(get_transport_from_path(real), probers=[BzrProber])
    if getattr(controldir._format, "fixed_components", False):
        # All in one `.bzr` (weave, bzr 0.x): one branch and its repository, no
        # reference or stacking to follow (Breezy has no branch format to read).
        _check_repository(controldir.open_repository(), root)
        return controldir.open_branch(ignore_fallbacks=True)
    branch_format = controldir.find_branch_format()
    if isinstance(branch_format, BranchReferenceFormat):
        target = _local_target(branch_format.get_reference(controldir), root, "is a reference to")
        _check_follow(follow, real, target)
        return _open(target, root, hops + 1, follow)
    repository = controldir.find_repository()
    _check_repository(repository, root)
    branch: Branch = branch_format.open(
        controldir, _found=True, ignore_fallbacks=True, found_repository=repository
    )
    stacked_on = _stacked_on(branch)
    if stacked_on is not None:
        target = _local_target(stacked_on, root, "is stacked on")
        _check_follow(follow, real, target)
        fallback = _open(target, root, hops + 1, follow)
        if fallback.repository.has_same_location(branch.repository):
            raise bzr_errors.UnstackableLocationError(branch.user_url, stacked_on)
        branch.repository.add_fallback_repository(fallback.repository)
    return branch


def _tree_place(real: str, top: str) -> str:
    """The place of the real path `real` in the tree at `top` ("/alpha/trunk")."""
    relative = os.path.relpath(real, top)
    return "/" if relative == "." else "/" + relative.replace(os.sep, "/")


def _check_follow(follow: FollowCheck | None, source: str, target: str) -> None:
    refused = follow(source, target) if follow is not None else None
    if refused is not None:
        raise Refused(refused)


def _real_place(path: str, root: str) -> str:
    """The real location of the branch at `path`, checked with its control directory."""
    real = os.path.realpath(path)
    control = os.path.realpath(os.path.join(real, ".bzr", "branch"))
    for place in (real, control):
        if not inside(place, root):
            raise Refused(f'it is really at "{place}", outside "{root}"')
    return real


def _local_target(url: str, root: str, relation: str) -> str:
    """The local path a reference or stacked-on `url` names, if it stays inside `root`."""
    path: str | None = None
    if url.startswith("file://"):
        try:
            path = urlutils.local_path_from_url(url)
        except urlutils.InvalidURL:
            path = None
    if path is None or not inside(os.path.realpath(path), root):
        raise Refused(f'it {relation} "{url}", which is not inside "{root}"; not followed')
    return path


def _stacked_on(branch: Branch) -> str | None:
    """The URL a branch is stacked on, joined to its location; None if not stacked."""
    try:
        url = branch.get_stacked_on_url()
    except (
        bzr_errors.NotStacked,
        UnstackableBranchFormat,
        bzr_errors.UnstackableRepositoryFormat,
    ):
        return None
    return urlutils.join(branch.base, url)


def _check_repository(repository: Repository, root: str) -> None:
    """Refuse a repository outside `root`, but for a shared one of a folder holding root."""
    folder = os.path.realpath(repository.user_transport.local_abspath("."))
    control = os.path.realpath(repository.control_transport.local_abspath("."))
    if inside(folder, root) and inside(control, root):
        return
    holds_root = inside(root, folder) and control == os.path.join(folder, ".bzr", "repository")
    if holds_root and repository.is_shared():
        return
    raise Refused(f'its repository is at "{control}", outside "{root}"')
