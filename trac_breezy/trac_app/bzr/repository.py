"""`BzrRepository`: a Bazaar branch, or a folder of branches, as a Trac repository.

Why this exists: it is the object Trac asks for everything (one per request):
it finds the branches of a repository directory, turns Trac's revision
strings into revision-ids and back, orders revisions, finds the node at a
path and revision, and compares trees.  The history of a path lives in
`history`, nodes and changesets in `node`, and everything that reads a
branch in `storage`.  The design (revision strings, order, modes) is
described in `connector`.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

from trac.core import TracError
from trac.versioncontrol.api import (
    Changeset,
    InvalidRepository,
    Node,
    NoSuchChangeset,
    NoSuchNode,
    Repository,
)

from trac_breezy.trac_app.bzr import history, storage
from trac_breezy.trac_app.bzr.confinement import FollowCheck
from trac_breezy.trac_app.bzr.errors import translates_storage_errors
from trac_breezy.trac_app.bzr.index import TRUNK, MultiIndex
from trac_breezy.trac_app.bzr.naming import (
    REVNO_RE,
    is_head,
    norm_path,
    quote_revid,
    trac_path,
    tree_scope,
    unquote_revid,
)
from trac_breezy.trac_app.bzr.node import BzrChangeset, BzrNode, Repos
from trac_breezy.trac_app.bzr.storage import NULL_REVISION, BranchHandle, join_path

REPOS_TYPE = "bzr"
# Revisions read at a time when the timeline walks a branch, newest first.
_CHUNK = 200

NodeChange = tuple[BzrNode | None, BzrNode | None, str, str]


@translates_storage_errors
class BzrRepository(Repository, Repos):
    """A Bazaar branch, or a folder of branches, as a Trac repository.

    `tree_root` is the Bazaar tree's top (BZR_ROOT, `[bzr] tree_root`): the
    repository's `scope` is then its place in the tree, which Trac's
    `AuthzSourcePolicy` puts before each path it checks (`naming.tree_scope`).
    `follow` checks each reference and stacked-on branch by the same rules
    (`confinement.rule_check`).
    """

    has_linear_changesets = False

    def __init__(
        self,
        path: str,
        params: dict[str, object],
        log: logging.Logger,
        tree_root: str = "",
        follow: FollowCheck | None = None,
    ) -> None:
        self.path = os.path.normpath(path)
        self.follow = follow
        super().__init__(f"{REPOS_TYPE}:{self.path}", params, log)
        self.scope = tree_scope(self.path, tree_root)
        self._handles: dict[str, BranchHandle] = {}
        self._virtual: set[str] = set()
        self._multi: MultiIndex | None = None
        self.multi = False
        self._scan()

    def _scan(self) -> None:
        path = self.path
        self._multi = None
        if not os.path.isdir(path):
            raise InvalidRepository(f'The Bazaar repository directory "{path}" does not exist')
        if os.path.isdir(os.path.join(path, ".bzr", "branch")):
            handle = BranchHandle(path, "", self.follow)
            handle.branch  # noqa: B018 - fail early, with the path, if unreadable
            self._handles = {"": handle}
            return
        relpaths = storage.find_branches(path)
        if not relpaths and not os.path.isdir(os.path.join(path, ".bzr")):
            raise InvalidRepository(
                f'"{path}" is neither a Bazaar branch nor a directory containing branches'
            )
        self.multi = True
        self._handles = {r: BranchHandle(os.path.join(path, r), r, self.follow) for r in relpaths}
        self._virtual = {
            "/".join(parts[:i])
            for parts in (r.split("/") for r in relpaths)
            for i in range(1, len(parts))
        }

    @property
    def handles(self) -> Mapping[str, BranchHandle]:
        """The branches, by their path in the repository ("" for a lone branch)."""
        return self._handles

    # -- lifecycle

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()

    def clear(self, youngest_rev: object = None) -> None:
        """Forget the tips read so far; the next call sees new commits."""
        self.close()
        self._scan()

    def sync(self, rev_callback: Callable[[str], None] | None = None, clean: bool = False) -> None:
        self.clear()

    # -- revision strings

    def _default_handle(self) -> BranchHandle | None:
        if not self.multi:
            return self._handles[""]
        if TRUNK in self._handles:
            return self._handles[TRUNK]
        return next(iter(self._handles.values())) if len(self._handles) == 1 else None

    def multi_index(self) -> MultiIndex:
        if self._multi is None:
            self._multi = storage.multi_index(self.path, self._handles.values())
        return self._multi

    def home(self, revid: bytes) -> BranchHandle:
        """The branch a revision is shown in (see `MultiIndex.home`)."""
        if not self.multi:
            return self._handles[""]
        return self._handles[self.multi_index().home[revid]]

    def rev_string(self, revid: bytes | None) -> str | None:
        """The revision string of a revision-id."""
        if revid is None or revid == NULL_REVISION:
            return None
        if self.multi:
            return quote_revid(revid)
        return self._handles[""].index.revnos.get(revid)  # None: not in the branch

    def revid_of(self, rev: object) -> bytes | None:
        """The revision-id a revision string names (None: empty repository).

        :raise NoSuchChangeset: if `rev` names no revision.
        """
        if is_head(rev):
            return self._youngest_revid()
        text = str(rev).strip()
        if text.startswith("revid:"):
            revid = text[len("revid:") :].encode("utf-8", "surrogateescape")
            if self._contains(revid):
                return revid
            raise NoSuchChangeset(text)
        if self.multi:
            revid = unquote_revid(text)
            if revid in self.multi_index().home:
                return revid
            if ":" in text:
                relpath, revno = text.rsplit(":", 1)
                handle = self._handles.get(norm_path(relpath))
            else:
                handle, revno = self._default_handle(), text
        else:
            handle, revno = self._handles[""], text
        if revno.startswith(("r", "R")) and REVNO_RE.match(revno[1:]):
            revno = revno[1:]  # r12, as in TracLinks
        if handle is None or revno not in handle.index.revids:
            raise NoSuchChangeset(text)
        return handle.index.revids[revno]

    def _contains(self, revid: bytes) -> bool:
        if self.multi:
            return revid in self.multi_index().home
        return revid in self._handles[""].index

    def _youngest_revid(self) -> bytes | None:
        if self.multi:
            order = self.multi_index().order
            return order[-1] if order else None
        tip = self._handles[""].tip
        return None if tip == NULL_REVISION else tip

    def normalize_rev(self, rev: object) -> str | None:
        return self.rev_string(self.revid_of(rev))

    def display_rev(self, rev: object) -> str | None:
        revid = self.revid_of(rev)
        if revid is None or not self.multi:
            return self.rev_string(revid)
        handle = self.home(revid)
        return f"{handle.relpath}:{handle.index.revnos[revid]}"

    short_rev = display_rev

    def normalize_path(self, path: str | None) -> str:
        return trac_path(norm_path(path))

    def get_youngest_rev(self) -> str | None:
        return self.rev_string(self._youngest_revid())

    def _order(self) -> list[bytes]:
        """All revision-ids, oldest first."""
        return self.multi_index().order if self.multi else self._handles[""].index.order

    def get_oldest_rev(self) -> str | None:
        order = self._order()
        return self.rev_string(order[0]) if order else None

    def get_changeset_uid(self, rev: object) -> str | None:
        revid = self.revid_of(rev)
        return revid.decode("utf-8", "surrogateescape") if revid else None

    def iter_revs(self) -> Iterator[str]:
        """Every revision string, oldest first (what a cache must hold)."""
        for revid in self._order():
            rev = self.rev_string(revid)
            assert rev is not None
            yield rev

    def tips_fingerprint(self) -> tuple[tuple[str, bytes], ...]:
        return tuple((h.relpath, h.tip) for h in self._handles.values())

    # -- order

    def _pos_pair(self, revid1: bytes, revid2: bytes) -> tuple[int, int]:
        if self.multi:
            for handle in (self.home(revid2), self.home(revid1)):
                index = handle.index
                if revid1 in index and revid2 in index:
                    return index.pos[revid1], index.pos[revid2]
            pos = self.multi_index().pos
            return pos[revid1], pos[revid2]
        pos = self._handles[""].index.pos
        return pos[revid1], pos[revid2]

    def rev_older_than(self, rev1: object, rev2: object) -> bool:
        revid1, revid2 = self.revid_of(rev1), self.revid_of(rev2)
        if revid1 is None or revid2 is None:
            return False
        pos1, pos2 = self._pos_pair(revid1, revid2)
        return pos1 < pos2

    def comes_after(self, revid1: bytes, revid2: bytes) -> bool:
        pos1, pos2 = self._pos_pair(revid1, revid2)
        return pos1 > pos2

    def parent_revs(self, rev: object) -> list[str]:
        revid = self.revid_of(rev)
        if revid is None:
            return []
        parents = self.home(revid).index.parents.get(revid, ())
        return [r for r in map(self.rev_string, parents) if r is not None]

    def child_revs(self, rev: object) -> list[str]:
        revid = self.revid_of(rev)
        if revid is None:
            return []
        children = self.home(revid).index.children.get(revid, [])
        return [r for r in map(self.rev_string, children) if r is not None]

    def previous_rev(self, rev: object, path: str = "") -> str | None:
        return self._neighbour(rev, path, -1)

    def next_rev(self, rev: object, path: str = "") -> str | None:
        return self._neighbour(rev, path, +1)

    def _neighbour(self, rev: object, path: str, step: int) -> str | None:
        """The revision before (`step` -1) or after (+1) `rev`, seen from `path`.

        Inside a branch: the previous or next change of the path; at a branch
        root: the first parent or first child; at a folder of branches: the
        one before or after in the repository-wide order.
        """
        revid = self.revid_of(rev)
        if revid is None:
            return None
        path = norm_path(path)
        handle, inner = self.locate(path)
        if inner:  # also a folder below the repository root
            change = history.previous_change if step < 0 else history.next_change
            return change(self, path, revid)
        if handle is None:
            multi = self.multi_index()
            i = multi.pos[revid] + step
            return self.rev_string(multi.order[i]) if 0 <= i < len(multi.order) else None
        if step < 0:
            return self.rev_string(self._pick(handle, revid, handle.index.first_parent))
        if revid not in handle.index:
            return None
        return self.rev_string(handle.index.first_child(revid))

    def _pick(
        self, handle: BranchHandle, revid: bytes, step: Callable[[bytes], bytes | None]
    ) -> bytes | None:
        """Step from `revid` inside `handle`, or from its state as of `revid`."""
        effective = self.shown_revid(handle, revid)
        if effective is None:
            return None
        return step(effective) if effective == revid else effective

    # -- paths and nodes

    def locate(self, path: str) -> tuple[BranchHandle | None, str]:
        """The branch holding `path` and the path inside it."""
        if not self.multi:
            return self._handles[""], path
        best = None
        for relpath, handle in self._handles.items():
            inside = path == relpath or path.startswith(relpath + "/")
            if inside and (best is None or len(relpath) > len(best.relpath)):
                best = handle
        if best is None:
            return None, path
        return best, path[len(best.relpath) + 1 :]

    def shown_revid(self, handle: BranchHandle, revid: bytes | None) -> bytes | None:
        """The revision of `handle` to show for the repository at `revid`."""
        tip = handle.tip
        if revid is None:
            return None if tip == NULL_REVISION else tip
        index = handle.index
        if revid in index:
            return revid
        if not self.multi:
            return None
        multi = self.multi_index()
        running, mainline = multi.asof[handle.relpath]
        i = bisect.bisect_right(running, multi.pos[revid])
        return mainline[i - 1] if i else None

    def get_node(self, path: str | None, rev: object = None) -> BzrNode:
        path = norm_path(path)
        revid = self.revid_of(rev)
        handle, inner = self.locate(path)
        if handle is None:
            if path and path not in self._virtual:
                raise NoSuchNode(path, rev)
            return BzrNode(self, path, self.rev_string(revid), Node.DIRECTORY, None, "", revid)
        effective = self.shown_revid(handle, revid)
        if effective is None:
            if not inner and (not self.multi or handle.tip == NULL_REVISION):
                # an empty branch still has a root directory
                return BzrNode(self, path, None, Node.DIRECTORY, handle, "", None)
            raise NoSuchNode(path, rev)
        if not inner:  # a branch root needs no inventory lookup
            return BzrNode(
                self, path, self.rev_string(effective), Node.DIRECTORY, handle, "", effective
            )
        node = self._entry_node(handle, effective, inner)
        if node is None:
            raise NoSuchNode(path, rev)
        return node

    def node_in(self, handle: BranchHandle, revid: bytes, inner: str) -> BzrNode:
        """The node at `inner` in `handle` at `revid`."""
        node = self._entry_node(handle, revid, inner)
        if node is None:
            raise NoSuchNode(join_path(handle.relpath, inner), self.rev_string(revid))
        return node

    def _entry_node(self, handle: BranchHandle, revid: bytes, inner: str) -> BzrNode | None:
        entry = handle.entry(revid, inner)
        if entry is None:
            return None
        path, rev = join_path(handle.relpath, inner), self.rev_string(revid)
        kind = storage.node_kind(entry.kind)  # equal to Trac's Node.DIRECTORY / Node.FILE
        return BzrNode(self, path, rev, kind, handle, inner, revid, entry)

    def folder_children(self, path: str, revid: bytes | None) -> Iterator[BzrNode]:
        prefix = path + "/" if path else ""
        names = set()
        for relpath in list(self._handles) + sorted(self._virtual):
            if relpath.startswith(prefix):
                names.add(relpath[len(prefix) :].split("/", 1)[0])
        for name in sorted(names):
            with contextlib.suppress(NoSuchNode):
                node = self.get_node(prefix + name, self.rev_string(revid))
                if node.handle is None and not any(True for _ in node.get_entries()):
                    continue  # a folder whose branches did not exist yet
                yield node

    def get_path_history(
        self, path: str | None, rev: object = None, limit: int | None = None
    ) -> Iterator[tuple[str, str, str]]:
        """History of `path` at `rev`, starting with its deletion if it is gone."""
        yield from history.path_history(self, norm_path(path), self.revid_of(rev), limit)

    # -- comparing trees

    def get_changes(
        self,
        old_path: str | None,
        old_rev: object,
        new_path: str | None,
        new_rev: object,
        ignore_ancestry: int = 1,
    ) -> Iterator[NodeChange]:
        old_node = self.get_node(old_path, old_rev)
        new_node = self.get_node(new_path, new_rev)
        if old_node.kind != new_node.kind:
            raise TracError(
                f"Cannot compare {old_node.kind} {old_node.path} with {new_node.kind} "
                f"{new_node.path}"
            )
        if old_node.isfile:
            if old_node.content_key() != new_node.content_key():
                yield old_node, new_node, Node.FILE, Changeset.EDIT
            return
        if old_node.handle is None or new_node.handle is None:
            raise TracError("Only directories inside one branch can be compared")
        if old_node.revid is None or new_node.revid is None or old_node.revid == new_node.revid:
            return
        if (old_node.handle, old_node.inner) == (new_node.handle, new_node.inner):
            yield from self._tree_diff(old_node, new_node)
        else:
            yield from self._path_diff(old_node, new_node)

    def _tree_diff(self, old: BzrNode, new: BzrNode) -> Iterator[NodeChange]:
        """Changes between two revisions of one directory of one branch."""
        handle = new.handle
        assert handle is not None and old.revid is not None and new.revid is not None
        specific = [new.inner] if new.inner else None
        for change in handle.diff(old.revid, new.revid, specific):
            old_node = new_node = None
            if change.change != storage.ADD:
                assert change.base_path is not None
                old_node = self.node_in(handle, old.revid, change.base_path)
            if change.change != storage.DELETE:
                new_node = self.node_in(handle, new.revid, change.path)
            yield old_node, new_node, change.kind, change.change  # Trac's kinds

    def _path_diff(self, old: BzrNode, new: BzrNode) -> Iterator[NodeChange]:
        """Changes between two directories compared path by path."""
        old_files = old.subtree()
        new_files = new.subtree()
        for rel in sorted(set(old_files) | set(new_files)):
            before, after = old_files.get(rel), new_files.get(rel)
            if before == after:
                continue
            old_node = old.child(rel) if before is not None else None
            new_node = new.child(rel) if after is not None else None
            if before is None:
                assert new_node is not None
                yield None, new_node, new_node.kind, Changeset.ADD
            elif after is None:
                assert old_node is not None
                yield old_node, None, old_node.kind, Changeset.DELETE
            elif old_node is not None and new_node is not None:
                if old_node.kind != new_node.kind:
                    yield old_node, None, old_node.kind, Changeset.DELETE
                    yield None, new_node, new_node.kind, Changeset.ADD
                else:
                    yield old_node, new_node, new_node.kind, Changeset.EDIT

    # -- changesets

    def get_changeset(self, rev: object) -> BzrChangeset:
        revid = self.revid_of(rev)
        if revid is None:
            raise NoSuchChangeset(rev)
        handle = self.home(revid)
        return BzrChangeset(self, handle, revid, handle.revinfo(revid))

    def get_changesets(self, start: datetime, stop: datetime) -> Iterator[BzrChangeset]:
        start_ts, stop_ts = start.timestamp(), stop.timestamp()
        if self.multi:
            multi = self.multi_index()
            lo = bisect.bisect_left(multi.times, start_ts)
            hi = bisect.bisect_left(multi.times, stop_ts)
            for revid in reversed(multi.order[lo:hi]):
                handle = self.home(revid)
                yield BzrChangeset(self, handle, revid, handle.revinfo(revid))
            return
        handle = self._handles[""]
        index = handle.index
        newest_first = index.order[::-1]
        for first in range(0, len(newest_first), _CHUNK):
            chunk = newest_first[first : first + _CHUNK]
            infos = handle.revinfos(chunk)
            for revid in chunk:
                info = infos[revid]
                if start_ts <= info.timestamp < stop_ts:
                    yield BzrChangeset(self, handle, revid, info)
                elif info.timestamp < start_ts and index.depth[revid] == 0:
                    # merged revisions are older than the merge of them
                    return

    def get_quickjump_entries(self, rev: object) -> Iterator[tuple[str, str, str, str]]:
        for relpath, handle in sorted(self._handles.items()):
            tip = handle.tip
            if self.multi and tip != NULL_REVISION:
                yield "branches", relpath, relpath, self.rev_string(tip) or ""
        for relpath, handle in sorted(self._handles.items()):
            tags: list[tuple[str, bytes]] = []
            for revid, names in handle.tags().items():
                if revid in handle.index:
                    tags.extend((name, revid) for name in names)
            for name, revid in sorted(tags):
                label = f"{relpath}:{name}" if self.multi else name
                yield "tags", label, trac_path(relpath), self.rev_string(revid) or ""

    def get_path_url(self, path: str | None, rev: object) -> str | None:
        url: str | None = self.params.get("url")
        if not url or not self.multi:
            return url
        handle, _inner = self.locate(norm_path(path))
        return f"{url.rstrip('/')}/{handle.relpath}" if handle else url
