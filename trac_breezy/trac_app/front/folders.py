"""What a folder of the Bazaar tree holds, for its page: branches, shared
repositories, folders and files; never `.bzr`.

Why this exists: Apache's listing of the tree showed each branch as a folder
whose only entry was `.bzr/`, the internals a visitor has no use for. A
folder's page lists what it holds by kind, and a branch's page says what the
branch is (its newest revision) instead of what it is made of. Names that
start with "." (`.bzr` included) and symbolic links (which Apache does not
follow either) are never listed, nor reached: such a path is not a folder.

A folder's page shows the branches anywhere below it (up to `MAX_BRANCHES`,
found as the Bazaar backend finds a repository's branches), then what else it
holds. Branches are read through the backend's `BranchHandle`, which opens
them only inside the tree and caches what it read per branch tip. Authors'
e-mail addresses are shortened as Trac shows them to anonymous users. With
a rule file (AUTHZ_FILE), only what the visitor may read is listed
(`access.Visitor`).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from breezy.errors import BzrError
from trac.util.text import obfuscate_email_address

from trac_breezy.trac_app.bzr.confinement import rule_check
from trac_breezy.trac_app.bzr.storage import (
    NULL_REVISION,
    BranchHandle,
    BzrStorageError,
    find_branches,
)
from trac_breezy.trac_app.front.access import EVERYONE, Visitor

BRANCH = "branch"
REPOSITORY = "repository"  # a shared repository: branches may live below it
FOLDER = "folder"
FILE = "file"
# Folders first, then files; by name within each.
_ORDER = {BRANCH: 0, REPOSITORY: 0, FOLDER: 0, FILE: 1}
# Branches listed on one folder's page, at most (each is opened to read its tip).
MAX_BRANCHES = 200


class NotAFolder(LookupError):
    """The path names nothing a folder page can show (the message says why)."""


@dataclass(frozen=True)
class Tip:
    """A branch's newest revision."""

    revno: str
    timestamp: float
    author: str
    message: str  # its first line


@dataclass(frozen=True)
class Entry:
    """One thing in a folder, or the folder itself."""

    name: str
    relpath: str  # below the tree's root, "/"-separated ("" is the root)
    kind: str
    size: int | None = None  # files only
    tip: Tip | None = None  # branches with revisions
    error: str | None = None  # a branch that cannot be read, and why

    @property
    def is_branch(self) -> bool:
        return self.kind == BRANCH


def kind_of(path: str) -> str:
    """BRANCH, REPOSITORY, FOLDER or FILE: what is at `path` (no symlink)."""
    if not os.path.isdir(path):
        return FILE
    if os.path.isdir(os.path.join(path, ".bzr", "branch")):
        return BRANCH
    if os.path.isdir(os.path.join(path, ".bzr", "repository")):
        return REPOSITORY
    return FOLDER


def resolve(root: str, relpath: str) -> str:
    """The directory `relpath` names below `root`.

    :raise NotAFolder: for hidden names (`.bzr`, `..`), symbolic links on
        the way, and anything that is not a directory.
    """
    parts = [part for part in relpath.split("/") if part]
    if any(part.startswith(".") for part in parts):
        raise NotAFolder(f"{relpath!r}: names starting with '.' are not shown")
    path = root
    for part in parts:
        path = os.path.join(path, part)
        try:
            mode = os.lstat(path).st_mode
        except OSError as e:
            raise NotAFolder(f"{relpath!r}: no such folder") from e
        if not stat.S_ISDIR(mode):
            raise NotAFolder(f"{relpath!r}: not a folder")
    if not os.path.isdir(path):
        raise NotAFolder(f"{relpath!r}: no such folder")
    return path


def read_tip(
    root: str, path: str, relpath: str, visitor: Visitor = EVERYONE
) -> tuple[Tip | None, str | None]:
    """(newest revision or None if the branch is empty, None) or (None, why not)."""
    # relpath is the branch's path below root, so the backend confines it to root;
    # a reference or stacking is followed only where the rules let its readers go.
    follow = rule_check(root, lambda: visitor.rules) if visitor.rules is not None else None
    handle = BranchHandle(path, relpath, follow)
    try:
        tip = handle.tip
        if handle.error is not None:
            return None, handle.error
        if tip == NULL_REVISION:
            return None, None
        revno = str(handle.branch.revision_id_to_revno(tip))  # the tip: on the mainline
        info = handle.revinfo(tip)
        first_line = (info.message.strip().splitlines() or [""])[0]
        author = obfuscate_email_address(info.author)
        return Tip(revno, info.timestamp, author, first_line), None
    except (BzrStorageError, BzrError, OSError) as e:
        return None, str(e)
    finally:
        handle.close()


def describe(
    root: str, relpath: str, *, with_tip: bool = True, visitor: Visitor = EVERYONE
) -> Entry:
    """The entry at `relpath` (a folder, as `resolve` accepts it)."""
    path = resolve(root, relpath)
    relpath = "/".join(part for part in relpath.split("/") if part)
    kind = kind_of(path)
    name = relpath.rpartition("/")[2]
    if kind == BRANCH and with_tip:
        tip, error = read_tip(root, path, relpath, visitor)
        return Entry(name, relpath, kind, tip=tip, error=error)
    return Entry(name, relpath, kind)


def branches_below(root: str, relpath: str, visitor: Visitor = EVERYONE) -> tuple[list[Entry], int]:
    """The branches anywhere below the folder at `relpath` (not itself) that
    `visitor` may read, by path, with their newest revision: at most
    MAX_BRANCHES of them, and how many there are. Hidden folders are left
    out, as everywhere."""
    folder = resolve(root, relpath)
    prefix = "/".join(part for part in relpath.split("/") if part)
    found = [
        f"{prefix}/{inner}" if prefix else inner
        for inner in find_branches(folder)
        if not any(part.startswith(".") for part in inner.split("/"))
    ]
    found = [child for child in found if visitor.may_see_branch(child)]
    shown = [describe(root, child, visitor=visitor) for child in found[:MAX_BRANCHES]]
    return shown, len(found)


def entries(root: str, relpath: str, visitor: Visitor = EVERYONE) -> list[Entry]:
    """What else the folder at `relpath` holds (branches are `branches_below`)
    that `visitor` may see, folders first; hidden names and symbolic links
    left out."""
    folder = resolve(root, relpath)
    prefix = "/".join(part for part in relpath.split("/") if part)
    found = []
    with os.scandir(folder) as scan:
        for item in scan:
            if item.name.startswith(".") or item.is_symlink():
                continue
            child = f"{prefix}/{item.name}" if prefix else item.name
            if not visitor.may_see(child):
                continue
            if item.is_dir(follow_symlinks=False):
                entry = describe(root, child, with_tip=False)
                if not entry.is_branch:
                    found.append(entry)
            elif item.is_file(follow_symlinks=False):
                found.append(Entry(item.name, child, FILE, size=item.stat().st_size))
    return sorted(found, key=lambda e: (_ORDER[e.kind], e.name.lower()))
