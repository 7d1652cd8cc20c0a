"""The history of a path: the revisions that changed it, newest first.

Why this exists: Trac's revision log, a node's history and the "previous /
next change" links of a file all ask which revisions changed a path, and
Bazaar answers that differently for a branch root (its log), a directory
(the changes below it, following renames), a file (its per-file graph,
following renames by file-id), a folder of branches, and a path that was
deleted.  These functions take the repository they work for rather than
being its methods, so the repository stays readable.

What they ask of it is the `Revisions` protocol below: public methods of
`BzrRepository`, named for what they do.  A protocol rather than an import:
the repository imports this module, so naming its class here would close a
circle (`tests/test_layout.py` counts type-only imports too).  Trac's git
backend keeps its three classes in one `git_fs.py`; here the three would pass
the 600-line limit, so they stay apart and the interface is written down.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Protocol

from trac.versioncontrol.api import Changeset, NoSuchNode

from trac_breezy.trac_app.bzr import storage
from trac_breezy.trac_app.bzr.index import MultiIndex
from trac_breezy.trac_app.bzr.naming import quote_revid, trac_path
from trac_breezy.trac_app.bzr.storage import BranchHandle, Change, Entry, join_path

HistoryItem = tuple[str, str, str]  # (path, revision string, Trac change kind)


class HasHistory(Protocol):
    """A node, as far as its history goes (`node.BzrNode`)."""

    def get_history(self, limit: int | None = None) -> Iterator[HistoryItem]: ...


class Revisions(Protocol):
    """What the history of a path asks of its repository (`BzrRepository`)."""

    def rev_string(self, revid: bytes | None) -> str | None:
        """The revision string of a revision-id (None: not shown)."""
        ...

    def revid_of(self, rev: object) -> bytes | None:
        """The revision-id a revision string names (None: empty repository)."""
        ...

    def comes_after(self, revid1: bytes, revid2: bytes) -> bool:
        """Is `revid1` younger than `revid2` in the repository's order?"""
        ...

    def locate(self, path: str) -> tuple[BranchHandle | None, str]:
        """The branch holding `path` and the path inside it."""
        ...

    def shown_revid(self, handle: BranchHandle, revid: bytes | None) -> bytes | None:
        """The revision of `handle` shown for the repository at `revid`."""
        ...

    def multi_index(self) -> MultiIndex:
        """The order of a folder of branches (only when it is one)."""
        ...

    def get_node(self, path: str | None, rev: object = None) -> HasHistory: ...

    def previous_rev(self, rev: object, path: str = "") -> str | None: ...

    def next_rev(self, rev: object, path: str = "") -> str | None: ...


# -- previous and next change of a path --------------------------------------


def previous_change(repos: Revisions, path: str, revid: bytes) -> str | None:
    """The change of `path` before `revid`."""
    rev = repos.rev_string(revid)
    try:
        node = repos.get_node(path, rev)
    except NoSuchNode:
        return repos.previous_rev(rev)
    for _path, hrev, _chg in node.get_history():
        if hrev != rev and hrev is not None:
            return hrev
    return None


def next_change(repos: Revisions, path: str, revid: bytes) -> str | None:
    """The oldest change of `path` younger than `revid`, seen from the tip."""
    try:
        node = repos.get_node(path, None)
    except NoSuchNode:
        return repos.next_rev(repos.rev_string(revid))
    following = None
    for _path, hrev, _chg in node.get_history():
        hrevid = repos.revid_of(hrev)
        if hrevid is None or not repos.comes_after(hrevid, revid):
            break
        following = hrev
    return following


# -- history of a path that may be gone --------------------------------------


def path_history(
    repos: Revisions, path: str, revid: bytes | None, limit: int | None
) -> Iterator[HistoryItem]:
    """History of `path` at `revid`, starting with its deletion if it is gone."""
    try:
        node = repos.get_node(path, repos.rev_string(revid))
    except NoSuchNode:
        pass
    else:
        yield from node.get_history(limit)
        return
    handle, inner = repos.locate(path)
    if handle is None or revid is None:
        return
    effective = repos.shown_revid(handle, revid)
    if effective is None:
        return
    count = 0
    for older in handle.index.ancestry(effective):
        if any(_deletes(change, inner) for change in handle.changes(older)):
            parent = handle.index.first_parent(older)
            rev_str = repos.rev_string(older)
            assert rev_str is not None
            yield trac_path(path), rev_str, Changeset.DELETE
            count += 1
            if parent is None or (limit is not None and count >= limit):
                return
            try:
                node = repos.get_node(path, repos.rev_string(parent))
            except NoSuchNode:
                return
            yield from node.get_history(None if limit is None else limit - count)
            return


def _deletes(change: Change, path: str) -> bool:
    """Does `change` remove `path` (itself, a parent, or by renaming it)?"""
    if change.change == storage.DELETE:
        return change.path == path or path.startswith(change.path + "/")
    if change.change == storage.MOVE and change.base_path is not None:
        return change.base_path == path or path.startswith(change.base_path + "/")
    return False


# -- history of a node --------------------------------------------------------


def root_history(
    repos: Revisions, handle: BranchHandle, revid: bytes, path: str
) -> Iterator[HistoryItem]:
    """The log of a branch from `revid`: every revision changed its root."""
    index = handle.index
    for older in index.ancestry(revid):
        rev = repos.rev_string(older)
        if rev is not None:
            yield path, rev, Changeset.ADD if not index.parents.get(older) else Changeset.EDIT


def dir_history(
    repos: Revisions, handle: BranchHandle, revid: bytes, inner: str
) -> Iterator[HistoryItem]:
    """Revisions that changed something below a directory, newest first.

    `current` is the directory's path in the tree of the revision being
    looked at; renames of it or of a parent move it backwards in time.
    """
    current = inner
    for older in handle.index.ancestry(revid):
        changes = handle.changes(older)
        chg, before = _dir_change(changes, current)
        rev = repos.rev_string(older)
        if chg is not None and rev is not None:
            yield join_path(handle.relpath, current), rev, chg
            if chg == Changeset.ADD:
                return
        current = before


def _dir_change(changes: tuple[Change, ...], current: str) -> tuple[str | None, str]:
    """How `changes` changed the directory `current`, and its path before them."""
    before, chg = current, None
    for change in changes:
        if change.path == current and change.kind == storage.DIRECTORY:
            if change.change == storage.ADD:
                chg = Changeset.ADD
            elif change.change == storage.MOVE and change.base_path is not None:
                chg, before = Changeset.MOVE, change.base_path
        elif (
            change.change == storage.MOVE
            and change.base_path is not None
            and current.startswith(change.path + "/")
        ):
            chg, before = Changeset.MOVE, change.base_path + current[len(change.path) :]
    if chg is None and any(_below(c.path, current) or _below(c.base_path, before) for c in changes):
        chg = Changeset.EDIT
    return chg, before


def _below(path: str | None, directory: str) -> bool:
    if path is None:
        return False
    return not directory or path == directory or path.startswith(directory + "/")


def file_history(repos: Revisions, handle: BranchHandle, entry: Entry) -> Iterator[HistoryItem]:
    """Follow the per-file graph: every revision that changed the file.

    Both sides of a merge are followed; a heap keyed by log position
    yields them newest first, and renames are followed by file-id.
    """
    file_id = entry.file_id
    if file_id is None or entry.revision is None:
        return
    pos = handle.index.pos
    start = entry.revision
    heap = [(-pos.get(start, -1), start)]
    seen = {start}
    while heap:
        _neg, current = heapq.heappop(heap)
        parents = handle.text_parents(file_id, current)
        for parent in parents:
            if parent not in seen:
                seen.add(parent)
                heapq.heappush(heap, (-pos[parent], parent))
        path, parent_id, name = handle.file_info(current, file_id)
        if not parents:
            chg = Changeset.ADD
        else:
            _ppath, pparent_id, pname = handle.file_info(parents[0], file_id)
            moved = (pparent_id, pname) != (parent_id, name)
            chg = Changeset.MOVE if moved else Changeset.EDIT
        rev = repos.rev_string(current)
        if rev is not None:
            yield join_path(handle.relpath, path), rev, chg


def folder_history(repos: Revisions, path: str, revid: bytes | None) -> Iterator[HistoryItem]:
    """The repository-wide log, restricted to the branches below a folder."""
    if revid is None:
        return
    multi = repos.multi_index()
    prefix = path + "/" if path else ""
    for i in range(multi.pos[revid], -1, -1):
        older = multi.order[i]
        if not prefix or (multi.home[older] + "/").startswith(prefix):
            yield trac_path(path), quote_revid(older), Changeset.EDIT
