"""Each smart request touches only the paths its user may read or write (AUTHZ_FILE).

Why at the file system and not per verb: a request names paths relative to
its URL, and Breezy resolves them (`../other-project/...` in a VFS request,
a server-to-server branch, the shared repository found above a branch,
an insert that writes packs into the repository). Checking the arguments of
each verb would have to repeat all of that resolution, and miss what a new
verb does. Every file operation of the smart server goes through the
confined transport (`confinement.ConfinedTransport`), after Breezy's chroot
and after symlinks are resolved, so that is where the rights are checked:
reading any path needs read (`_abspath`, which every operation calls), and
each operation that changes the tree also needs write on what it changes.

A path its user may not read looks absent (NoSuchFile): Breezy's walk up to
a shared repository then simply stops, and nobody learns what exists where
they may not look. A write where only reading is allowed is PermissionDenied,
which brz shows as such.

The rights of the request being served are in a context variable, set by the
app around each request (`in_force`); the thread that inserts a push's data
runs in a copy of the request's context (`overrides.BoundedInsertStream`).
Without AUTHZ_FILE nothing is set and nothing is checked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from breezy import errors, urlutils
from breezy.transport import NoSuchFile

from trac_breezy.authz import READ, WRITE, Access, Rules


@dataclass(frozen=True)
class RequestRights:
    """Who is asking (None: anonymous) and the rules that apply to them."""

    rules: Rules
    user: str | None

    def may(self, tree_path: str, access: Access) -> bool:
        return self.rules.may(self.user, tree_path, access)


_current: ContextVar[RequestRights | None] = ContextVar("trac_breezy_rights", default=None)


@contextmanager
def in_force(rights: RequestRights | None) -> Iterator[None]:
    """Check every file operation of this request (and its inserter) against `rights`."""
    token = _current.set(rights)
    try:
        yield
    finally:
        _current.reset(token)


def tree_path(real_path: str, root: str) -> str:
    """`real_path` (resolved, inside `root`) as a path of the tree: "/", "/alpha/trunk"."""
    relative = os.path.relpath(real_path, root)
    return "/" if relative == "." else "/" + relative.replace(os.sep, "/")


def check(real_path: str, root: str, access: Access) -> None:
    """Refuse the operation unless the request's user may `access` `real_path`."""
    rights = _current.get()
    if rights is None:
        return
    path = tree_path(real_path, root)
    if rights.may(path, access):
        return
    if access == READ or not rights.may(path, READ):
        raise NoSuchFile(path)
    who = rights.user or "anonymous"
    raise errors.PermissionDenied(path, f"{who} may read but not write here (access rules)")


def check_move(real_path: str, root: str) -> None:
    """Refuse to rename or move a directory below which the rules name paths.

    A rename takes everything below along, and rules go by path: renaming
    `/beta/team` (writable) to `/beta/mine` would leave `[/beta/team/release]`
    (read-only) naming nothing, and the release branch writable under its
    new name. Breezy itself renames only inside `.bzr` (locks, packs).
    """
    rights = _current.get()
    if rights is None:
        return
    path = tree_path(real_path, root)
    if rights.rules.has_sections_below(path):
        raise errors.PermissionDenied(
            path, "access rules name paths below it, so it cannot be renamed or moved"
        )


def visible(names: list[str], real_dir: str, root: str) -> list[str]:
    """The entries (URL-escaped names) of `real_dir` that the request's user may read.

    A listing must not name what its reader may not see (the folder pages
    filter the same way).
    """
    rights = _current.get()
    if rights is None:
        return names
    parent = tree_path(real_dir, root).rstrip("/")
    return [name for name in names if rights.may(f"{parent}/{urlutils.unescape(name)}", READ)]


# The operations of Breezy's LocalTransport that change the tree, by which of
# their path arguments they change (tests/test_rights.py checks that every
# operation is either here or in READS, for the installed Breezy).
WRITES_FIRST = (
    "append_bytes",
    "append_file",
    "delete",
    "lock_write",
    "mkdir",
    "open_write_stream",
    "put_bytes",
    "put_bytes_non_atomic",
    "put_file",
    "put_file_non_atomic",
    "rmdir",
)
WRITES_BOTH = ("move", "rename")
WRITES_SECOND = ("copy", "hardlink", "symlink")
# Operations that only read (each path they take goes through `_abspath`), or
# take no path of this transport at all.
READS = (
    "abspath",
    "clone",
    "copy_to",
    "external_url",
    "get",
    "has",
    "iter_files_recursive",
    "list_dir",
    "listable",
    "local_abspath",
    "lock_read",
    "readlink",
    "relpath",
    "stat",
)
__all__ = [
    "READ",
    "WRITE",
    "RequestRights",
    "check",
    "check_move",
    "in_force",
    "tree_path",
    "visible",
]
