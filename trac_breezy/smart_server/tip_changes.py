"""Tell listeners that a smart request moved a branch tip.

Breezy runs `post_change_branch_tip` hooks inside the smart server whenever a
request moves a branch tip (push, commit from a checkout, uncommit, ...). This
module owns that hook but knows nothing of who cares: it works out the local
path of the branch and hands a `TipChange` (old and new tip) to every
listener registered with `on_tip_change` (in the image, `wsgi/bzr.wsgi`
registers Trac's push announcer). The change carries the WSGI environ of the
request that moved the tip, so a listener can read the `SetEnv` keys Apache
set for it.

The hook runs in the request thread, jailed to the smart server's chroot, and
the push waits for it: listeners must be quick and hand slow work to a thread
of their own. So the revisions that are new in the branch are not worked out
here (a walk of the graph: ~13 ms for a 1,000-revision push, which its client
waited for) but by `TipChange.new_revisions`, in the listener's thread and
only once a listener needs them. A failing listener is logged and never fails
the push.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from breezy import urlutils
from breezy.branch import Branch, ChangeBranchTipParams
from breezy.revision import NULL_REVISION

from trac_breezy import log

HOOK_NAME = "trac-breezy: tell listeners about new revisions"


@dataclass(frozen=True)
class TipChange:
    """A branch tip moved: where the branch lives, its old and its new tip."""

    branch_path: str  # the local path of the branch
    old_revid: bytes | None
    new_revid: bytes | None
    environ: Mapping[str, str]  # the string-valued WSGI environ of the request

    @property
    def has_new_tip(self) -> bool:
        """False when the branch was emptied (its new tip is the null revision)."""
        return self.new_revid not in (None, NULL_REVISION)

    def new_revisions(self, open_branch: Callable[[str], Branch]) -> tuple[bytes, ...]:
        """Revisions now in the branch that were not before: mainline oldest first, then merged.

        Opens the branch by its local path with `open_branch`, so call it
        outside the request thread (which the smart server jails to its
        chroot). The pusher wrote that branch's files: `open_branch` must not
        follow what they point to outside the tree (a stacked-on URL or a
        branch reference would make the server connect anywhere).
        """
        if not self.has_new_tip:
            return ()
        branch = open_branch(self.branch_path)
        with branch.lock_read():
            return tuple(new_revisions(branch, self.old_revid, self.new_revid))


Listener = Callable[[TipChange], None]

_listeners: list[Listener] = []
# chroot URL prefix of each smart-server app -> its local root
_roots: dict[str, str] = {}
_lock = threading.Lock()
_installed = False
_request = threading.local()


def on_tip_change(listener: Listener) -> None:
    """Call `listener` with a `TipChange` whenever a smart request moves a tip (once,
    however often it is registered)."""
    with _lock:
        if listener not in _listeners:
            _listeners.append(listener)


def register_root(chroot_url: str, root: str) -> None:
    """Called by each SmartApp: branches under `chroot_url` live in `root`."""
    global _installed
    with _lock:
        _roots[chroot_url] = root
        if not _installed:
            Branch.hooks.install_named_hook("post_change_branch_tip", tip_changed, HOOK_NAME)
            _installed = True


@contextmanager
def serving(environ: Mapping[str, Any]) -> Iterator[None]:
    """While the current thread serves the request of `environ` (set by SmartApp)."""
    _request.environ = environ
    try:
        yield
    finally:
        _request.environ = None


def request_environ() -> Mapping[str, str]:
    """The string-valued part of the environ of the request this thread serves."""
    environ = getattr(_request, "environ", None) or {}
    return MappingProxyType({k: v for k, v in environ.items() if isinstance(v, str)})


def local_path(branch_url: str) -> str | None:
    """The local path of the branch at `branch_url`, or None if no app of ours serves it."""
    for prefix, root in list(_roots.items()):
        if branch_url.startswith(prefix):
            relpath = urlutils.unescape(branch_url[len(prefix) :]).strip("/")
            return os.path.join(root, relpath) if relpath else root
    return None


def new_revisions(branch: Branch, old_revid: bytes | None, new_revid: bytes | None) -> list[bytes]:
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


def _change(params: ChangeBranchTipParams) -> TipChange | None:
    """The TipChange of Breezy's hook parameters, or None if the branch is not ours."""
    branch_path = local_path(params.branch.base)
    if branch_path is None:
        return None
    return TipChange(branch_path, params.old_revid, params.new_revid, request_environ())


def tip_changed(params: ChangeBranchTipParams) -> None:
    """The Breezy hook (see the module docstring)."""
    if not _listeners:
        return
    try:
        change = _change(params)
    except Exception as error:  # a push must never fail because of a listener
        log(f"working out which branch moved failed: {error!r}")
        return
    if change is None:
        return
    for listener in list(_listeners):
        try:
            listener(change)
        except Exception as error:
            log(f"a tip-change listener failed: {error!r}")
