"""The storage layer of the Bazaar backend: branches read through Breezy.

Why this exists: as in Trac's own git backend (``PyGIT`` under ``git_fs``),
the code that knows the version-control tool is kept apart from the code
that knows Trac.  Everything here speaks revision-ids and branch-relative
paths, imports nothing from Trac, and can be used and tested without a Trac
environment; the connector modules of this package build Trac's repository,
node and changeset API on it.

Branches are opened by `confinement`: only inside the directory of the
Trac repository (real paths), references and stacked-on branches included,
and never over the network.  File content is read as a stream (`content`).

A failure is raised as :class:`BzrStorageError` (:class:`CannotOpenBranch`
when a branch cannot be opened at all, or is refused), its message naming
the branch path as a user should see it; `trac_breezy.trac_app.bzr.errors`
turns these into Trac's errors.  In a folder of branches, a branch that
cannot be opened does not fail the others: its handle records the error
(`BranchHandle.error`) and shows as an empty branch.  Change and node kinds
are plain strings equal to Trac's own (``Changeset.ADD`` is ``"add"``,
``Node.FILE`` is ``"file"``).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NamedTuple, cast

from breezy import errors as bzr_errors
from breezy.branch import Branch
from breezy.bzr.inventorytree import InventoryRevisionTree
from breezy.repository import Repository
from breezy.revision import NULL_REVISION as NULL_REVISION  # re-exported: node, folders

from trac_breezy.bzr_formats import register_all
from trac_breezy.trac_app.bzr import collectable, confinement, content
from trac_breezy.trac_app.bzr.caches import LRU, process_cache
from trac_breezy.trac_app.bzr.index import BranchIndex, MultiIndex, revisions

# Every format Breezy reads, bzr 0.x's weave ones too (as the smart server).
register_all()

# Kinds of change and of node; the values are Trac's (Bazaar records no copies).
ADD, COPY, DELETE, EDIT, MOVE = "add", "copy", "delete", "edit", "move"
DIRECTORY, FILE = "dir", "file"

_MAX_SCAN_DEPTH = 8
# A tip or tags file younger than this may change again without a visible
# change of its stat data on file systems with coarse timestamps.
_SETTLED_SECONDS = 2.0

StatKey = tuple[int, int, int]
# The tip file, then the files that say what a branch is (a reference?) and
# where it is stacked: a change of any of them means "open the branch again".
TipKey = tuple[StatKey, StatKey | None, StatKey | None]


# -- Errors ------------------------------------------------------------------


class BzrStorageError(Exception):
    """A branch could not be read; the message names its path."""


class CannotOpenBranch(BzrStorageError):
    """A branch is missing, is not a branch, or cannot be opened."""


def describe(error: BaseException) -> str:
    """``ClassName: message``, the way Trac's `exception_to_unicode` shows an error."""
    return f"{type(error).__name__}: {error}"


@contextlib.contextmanager
def _reading(path: str) -> Iterator[None]:
    """Turn Breezy and OS errors while reading `path` into a `BzrStorageError`."""
    try:
        yield
    except BzrStorageError:
        raise
    except (bzr_errors.BzrError, OSError) as e:
        raise BzrStorageError(f'Cannot read the Bazaar branch at "{path}": {describe(e)}') from e


# -- What a branch hands out; revisions never change -------------------------


@dataclass(frozen=True)
class RevInfo:
    """What Trac shows of a revision."""

    committer: str
    authors: tuple[str, ...]
    timestamp: float
    timezone: int
    message: str
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def author(self) -> str:
        return self.authors[0] if self.authors else self.committer


class Change(NamedTuple):
    """One change of a revision against its first parent, branch-relative."""

    path: str
    kind: str  # DIRECTORY or FILE
    change: str  # ADD, DELETE, EDIT or MOVE
    base_path: str | None


class Entry(NamedTuple):
    """The inventory data of one path in a revision tree."""

    kind: str  # Breezy's: "file", "directory", "symlink", "tree-reference"
    revision: bytes | None
    size: int | None
    executable: bool
    target: str | None
    file_id: bytes | None

    @classmethod
    def of(cls, entry: Any) -> Entry:  # an inventory entry of any kind (no common type)
        return cls(
            entry.kind,
            entry.revision,
            getattr(entry, "text_size", None),
            bool(getattr(entry, "executable", False)),
            getattr(entry, "symlink_target", None),
            entry.file_id,
        )


def node_kind(bzr_kind: str | None) -> str:
    """DIRECTORY or FILE: how an entry of Breezy's kind `bzr_kind` shows."""
    return DIRECTORY if bzr_kind in ("directory", "tree-reference") else FILE


def join_path(prefix: str, path: str) -> str:
    """`prefix/path`, where either may be '' (the root)."""
    return f"{prefix}/{path}" if prefix and path else prefix or path


# -- Process-wide caches and their validation --------------------------------

# Bounded by weight too (caches.py): measured on a 1,000-revision branch, an
# index takes ~500 B a revision, a multi-index ~170 B a revision, a change
# ~220 B, a directory's last change ~160 B.
_index_cache: LRU[tuple[str, bytes], BranchIndex] = process_cache(64, 50_000, revisions)
_multi_cache: LRU[tuple[Any, ...], MultiIndex] = process_cache(16, 100_000, revisions)
_revinfo_cache: LRU[tuple[str, bytes], RevInfo] = process_cache(100_000)  # ~720 B each
_changes_cache: LRU[tuple[str, bytes], tuple[Change, ...]] = process_cache(50_000, 200_000)
_lastchange_cache: LRU[tuple[str, bytes], dict[str, bytes]] = process_cache(256, 100_000)
_fileinfo_cache: LRU[tuple[str, bytes, bytes], tuple[str, bytes | None, str]] = process_cache(
    50_000
)
_tip_cache: LRU[str, tuple[TipKey, bytes, str]] = process_cache(4096)
_tags_cache: LRU[str, tuple[StatKey, dict[bytes, set[str]]]] = process_cache(4096)


def _stat_key(path: str, name: str = "last-revision") -> StatKey | None:
    """What changes when Breezy rewrites a branch's tip or tags (atomically).

    Only used to validate caches: None (another branch format) means "read
    the branch".
    """
    try:
        st = os.stat(os.path.join(path, ".bzr", "branch", name))
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _tip_key(path: str) -> TipKey | None:
    """What changes when a branch's tip, format or stacking changes."""
    tip = _stat_key(path)
    if tip is None:
        return None
    return tip, _stat_key(path, "format"), _stat_key(path, "branch.conf")


def _settled(stat: StatKey | None) -> bool:
    """Can a cache keyed by this stat data be trusted?"""
    return stat is not None and stat[1] / 1e9 < time.time() - _SETTLED_SECONDS


def holds_branch(control: str) -> bool:
    """Whether the control directory `control` (a `.bzr`) holds a branch: in
    `branch/` (bzr 0.8 onwards), or all in one (weave, bzr 0.x: its
    `revision-history` lies in `.bzr` itself)."""
    return os.path.isdir(os.path.join(control, "branch")) or os.path.isfile(
        os.path.join(control, "revision-history")
    )


def find_branches(root: str) -> list[str]:
    """Relative paths of the Bazaar branches below `root`, sorted.

    Symlinked directories are not entered (`os.walk` does not follow them);
    a branch whose ``.bzr`` leads elsewhere is listed and refused when opened.
    """
    found = []
    base_depth = root.rstrip(os.sep).count(os.sep)
    for dirpath, dirnames, _files in os.walk(root):
        if ".bzr" in dirnames:
            dirnames.remove(".bzr")
            if holds_branch(os.path.join(dirpath, ".bzr")) and dirpath != root:
                found.append(os.path.relpath(dirpath, root).replace(os.sep, "/"))
                dirnames[:] = []  # a branch is a leaf; don't walk a working tree
                continue
        if dirpath.count(os.sep) - base_depth >= _MAX_SCAN_DEPTH:
            dirnames[:] = []
        dirnames.sort()
    return sorted(found)


# -- One branch, read-locked for the lifetime of a repository object ---------


def repository_dir(path: str, relpath: str) -> str:
    """The ``dir`` of the Trac repository a branch at `path` belongs to.

    `relpath` is the branch's path in a folder of branches ('' for a branch
    that is the repository itself), so the folder is `path` without it.
    """
    if not relpath:
        return path
    return path[: len(path) - len(relpath)].rstrip(os.sep) or os.sep


class BranchHandle:
    """One Bazaar branch of a Trac repository.

    The branch is opened and read-locked lazily, at most once per repository
    object (that is, per request); its tip is read once so the whole request
    sees one consistent state.  It is opened only inside the repository's
    directory (`confinement`).  A branch of a folder of branches (`relpath`
    not '') that cannot be opened shows as an empty branch with `error` set,
    so the other branches still work; a lone branch raises.
    """

    def __init__(
        self, path: str, relpath: str, follow: confinement.FollowCheck | None = None
    ) -> None:
        self.path = path
        self.relpath = relpath
        self.follow = follow  # the access rules for references and stacking (confinement)
        self.error: str | None = None  # why the branch cannot be shown
        self._branch: Branch | None = None
        self._tip: bytes | None = None
        self._repo_key: str | None = None
        self._index: BranchIndex | None = None
        self._trees: dict[bytes, InventoryRevisionTree] = {}
        self._tags: dict[bytes, set[str]] | None = None

    # opening

    @property
    def branch(self) -> Branch:
        if self.error is not None:
            raise CannotOpenBranch(self.error)
        if self._branch is None:
            self._open()
        assert self._branch is not None
        return self._branch

    def _open(self) -> None:
        try:
            root = repository_dir(self.path, self.relpath)
            branch = confinement.open_branch(self.path, root, self.follow)
        except confinement.Refused as e:
            raise CannotOpenBranch(f'The Bazaar branch at "{self.path}" is not shown: {e}') from e
        except bzr_errors.NotBranchError as e:
            raise CannotOpenBranch(
                f'"{self.path}" is not a Bazaar branch (missing or unreadable)'
            ) from e
        except (bzr_errors.BzrError, OSError) as e:
            raise CannotOpenBranch(
                f'Cannot open the Bazaar branch at "{self.path}": {describe(e)}'
            ) from e
        collectable.make_collectable(branch.repository)  # else never freed (see there)
        with _reading(self.path):
            branch.lock_read()
            try:
                self._read_tip(branch)
            except BaseException:
                branch.unlock()
                raise
        self._branch = branch

    def _read_tip(self, branch: Branch) -> None:
        # lock_read() loaded the repository's pack list just before the tip
        # is read here; a push finishing in between leaves a tip whose
        # revisions are not visible yet, so look once more.  The tip file is
        # stat'ed first: a cache entry may be older than its key, never newer.
        stat = _tip_key(self.path)
        tip = branch.last_revision()
        repository = branch.repository
        if tip != NULL_REVISION and not repository.has_revision(tip):
            repository.refresh_data()  # a push is writing right now
            if not repository.has_revision(tip):
                raise BzrStorageError(
                    f'The Bazaar branch at "{self.path}" names a revision its '
                    "repository does not have (yet); try again in a moment"
                )
        repo_key = repository.user_url
        if self._tip is None:
            self._tip, self._repo_key = tip, repo_key
        if stat is not None:
            _tip_cache.put(self.path, (stat, tip, repo_key))

    def _state(self) -> tuple[bytes, str]:
        """(tip, repository key), from the cache if the tip file did not change."""
        if self._tip is None or self._repo_key is None:
            stat = _tip_key(self.path)
            cached = _tip_cache.get(self.path) if stat and _settled(stat[0]) else None
            if cached is not None and cached[0] == stat:
                self._tip, self._repo_key = cached[1], cached[2]
            else:
                self._open_or_set_error()
        assert self._tip is not None and self._repo_key is not None
        return self._tip, self._repo_key

    def _open_or_set_error(self) -> None:
        """Open the branch (which reads the tip); in a folder of branches, record a failure."""
        try:
            self.branch  # noqa: B018
        except BzrStorageError as e:
            if not self.relpath:
                raise
            self.error = str(e)
            self._tip, self._repo_key = NULL_REVISION, f"error:{self.path}"

    @property
    def tip(self) -> bytes:
        return self._state()[0]

    @property
    def repo_key(self) -> str:
        """Names the repository that stores the branch's revisions."""
        return self._state()[1]

    @property
    def repository(self) -> Repository:
        return self.branch.repository

    def close(self) -> None:
        branch, self._branch = self._branch, None
        self._tip = self._repo_key = self._index = self._tags = self.error = None
        self._trees.clear()
        if branch is not None:
            with contextlib.suppress(Exception):
                branch.unlock()

    # the revision graph and revisions

    @property
    def index(self) -> BranchIndex:
        if self._index is None:
            tip = self.tip
            index = _index_cache.get((self.path, tip))
            if index is None:
                with _reading(self.path):
                    index = _index_cache.put((self.path, tip), self._build_index(tip))
            self._index = index
        return self._index

    def _build_index(self, tip: bytes) -> BranchIndex:
        if tip == NULL_REVISION:
            return BranchIndex(tip)
        repository = self.repository
        graph = repository.get_known_graph_ancestry([tip])
        nodes = graph.merge_sort(tip)
        parent_map = repository.get_parent_map([node.key for node in nodes])
        return BranchIndex(tip, nodes, parent_map)

    def revinfos(self, revids: Iterable[bytes]) -> dict[bytes, RevInfo]:
        """Revision metadata, from the process cache or the repository."""
        key = self.repo_key
        result: dict[bytes, RevInfo] = {}
        missing = []
        for revid in revids:
            info = _revinfo_cache.get((key, revid))
            if info is None:
                missing.append(revid)
            else:
                result[revid] = info
        for start in range(0, len(missing), 1000):
            chunk = missing[start : start + 1000]
            with _reading(self.path):
                revisions = self.repository.get_revisions(chunk)
            for revision in revisions:
                info = RevInfo(
                    committer=revision.committer or "",
                    authors=tuple(revision.get_apparent_authors()),
                    timestamp=revision.timestamp,
                    timezone=revision.timezone or 0,
                    message=revision.message or "",
                    properties=dict(revision.properties),
                )
                result[revision.revision_id] = _revinfo_cache.put((key, revision.revision_id), info)
        return result

    def revinfo(self, revid: bytes) -> RevInfo:
        return self.revinfos([revid])[revid]

    def tags(self) -> dict[bytes, set[str]]:
        """Tag names by revision-id, without opening the branch if unchanged."""
        if self._tags is None and self.tip == NULL_REVISION:
            self._tags = {}  # an empty branch, or one that cannot be opened
        if self._tags is None:
            stat = _stat_key(self.path, "tags")
            cached = _tags_cache.get(self.path) if _settled(stat) else None
            if cached is not None and cached[0] == stat:
                self._tags = cached[1]
                return self._tags
            with _reading(self.path):
                try:
                    self._tags = self.branch.tags.get_reverse_tag_dict()
                except bzr_errors.BzrError:  # tags unsupported by the format
                    self._tags = {}
            if stat is not None:
                _tags_cache.put(self.path, (stat, self._tags))
        return self._tags

    # trees

    def tree(self, revid: bytes) -> InventoryRevisionTree:
        tree = self._trees.get(revid)
        if tree is None:
            with _reading(self.path):
                tree = cast("InventoryRevisionTree", self.repository.revision_tree(revid))
            if len(self._trees) > 64:
                self._trees.clear()
            self._trees[revid] = tree
        return tree

    def entry(self, revid: bytes, relpath: str) -> Entry | None:
        tree = self.tree(revid)
        with _reading(self.path):
            for path, entry in tree.iter_entries_by_dir(specific_files=[relpath]):
                if path == relpath:
                    return Entry.of(entry)
        return None

    def child_entries(self, revid: bytes, relpath: str) -> list[tuple[str, Entry]]:
        """(name, entry) of each child of the directory `relpath` at `revid`."""
        tree = self.tree(revid)
        with _reading(self.path):
            return [(e.name, Entry.of(e)) for e in tree.iter_child_entries(relpath)]

    def subtree(self, revid: bytes, relpath: str) -> dict[str, tuple[Any, ...]]:
        """Path (relative to the directory `relpath`) -> content key, for diffs."""
        tree = self.tree(revid)
        result: dict[str, tuple[Any, ...]] = {}
        pending = [""]
        with _reading(self.path):
            while pending:
                rel_dir = pending.pop()
                for entry in tree.iter_child_entries(join_path(relpath, rel_dir)):
                    rel = join_path(rel_dir, entry.name)
                    if entry.kind == "file":
                        result[rel] = ("file", entry.text_sha1, entry.executable)
                    elif entry.kind == "symlink":
                        result[rel] = ("symlink", entry.symlink_target)
                    else:
                        result[rel] = (entry.kind,)
                        if entry.kind == "directory":
                            pending.append(rel)
        return result

    def open_file(self, revid: bytes, relpath: str) -> BinaryIO:
        """The content of a file as a read-only stream (see `content`)."""
        tree = self.tree(revid)
        with _reading(self.path):
            key = (tree.path2id(relpath), tree.get_file_revision(relpath))
            return content.open_text(self.repository, key)

    def file_sha1(self, revid: bytes, relpath: str) -> str:
        with _reading(self.path):
            return cast(str, self.tree(revid).get_file_sha1(relpath))

    def annotate(self, revid: bytes, relpath: str) -> list[bytes]:
        """The revision-id that last changed each line of a file."""
        with _reading(self.path):
            return [line_revid for line_revid, _line in self.tree(revid).annotate_iter(relpath)]

    # changes

    def diff(
        self, old_revid: bytes, new_revid: bytes, specific_files: list[str] | None = None
    ) -> list[Change]:
        """The changes from the tree at `old_revid` to the tree at `new_revid`."""
        old_tree, new_tree = self.tree(old_revid), self.tree(new_revid)
        with _reading(self.path):
            return list(tree_changes(old_tree, new_tree, specific_files))

    def changes(self, revid: bytes) -> tuple[Change, ...]:
        """The changes of `revid` against its first parent (cached)."""
        key = (self.repo_key, revid)
        changes = _changes_cache.get(key)
        if changes is None:
            parent = self.index.first_parent(revid) or NULL_REVISION
            changes = tuple(self.diff(parent, revid))
            _changes_cache.put(key, changes)
        return changes

    def last_changes(self, revid: bytes) -> dict[str, bytes]:
        """The newest change under each directory of the tree at `revid`."""
        key = (self.path, revid)
        last = _lastchange_cache.get(key)
        if last is None:
            last = self._find_last_changes(revid)
            _lastchange_cache.put(key, last)
        return last

    def _find_last_changes(self, revid: bytes) -> dict[str, bytes]:
        pos = self.index.pos
        last: dict[str, bytes] = {}

        def newer(a: bytes | None, b: bytes) -> bytes:
            return b if a is None or pos.get(b, -1) > pos.get(a, -1) else a

        tree = self.tree(revid)
        with _reading(self.path):
            for path, entry in tree.iter_entries_by_dir():
                if entry.kind == "directory":
                    last[path] = newer(last.get(path), entry.revision)
                if path:
                    parent = posixpath.dirname(path)
                    last[parent] = newer(last.get(parent), entry.revision)
        for path in sorted(last, key=lambda p: p.count("/") if p else -1, reverse=True):
            if path:
                parent = posixpath.dirname(path)
                last[parent] = newer(last.get(parent), last[path])
        return last

    # the per-file graph

    def file_info(self, revid: bytes, file_id: bytes) -> tuple[str, bytes | None, str]:
        """(path, parent file-id, name) of `file_id` in the tree at `revid`."""
        key = (self.repo_key, revid, file_id)
        info = _fileinfo_cache.get(key)
        if info is None:
            tree = self.tree(revid)
            with _reading(self.path):
                entry = tree.root_inventory.get_entry(file_id)
                info = (tree.id2path(file_id), entry.parent_id, entry.name)
            _fileinfo_cache.put(key, info)
        return info

    def text_parents(self, file_id: bytes, revid: bytes) -> tuple[bytes, ...]:
        """Revisions of the previous versions of a file in the per-file graph."""
        key = (file_id, revid)
        with _reading(self.path):
            parent_map = self.repository.texts.get_parent_map([key])  # type: ignore[attr-defined]
        pos = self.index.pos
        return tuple(p[-1] for p in parent_map.get(key) or () if p[-1] in pos)


def multi_index(root: str, handles: Iterable[BranchHandle]) -> MultiIndex:
    """The repository-wide index of the branches below `root`, at their tips now."""
    ordered = sorted(handles, key=lambda h: h.relpath)
    key = (root, *((h.relpath, h.tip) for h in ordered))
    multi = _multi_cache.get(key)
    if multi is None:
        indexes = {h.relpath: h.index for h in ordered}
        infos: dict[bytes, RevInfo] = {}
        for handle in ordered:
            wanted = [r for r in handle.index.order if r not in infos]
            infos.update(handle.revinfos(wanted))
        timestamps = {revid: info.timestamp for revid, info in infos.items()}
        multi = _multi_cache.put(key, MultiIndex(indexes, timestamps))
    return multi


def tree_changes(old: Any, new: Any, specific_files: list[str] | None = None) -> Iterator[Change]:
    """Changes between two revision trees, renames as moves."""
    for c in new.iter_changes(old, specific_files=specific_files):
        old_path, new_path = c.path
        old_kind, new_kind = c.kind
        if new_path == "" or (old_path == "" and new_path is None):
            continue  # the tree root
        if not c.versioned[0] or old_kind is None:
            yield Change(new_path, node_kind(new_kind), ADD, None)
        elif not c.versioned[1] or new_kind is None:
            yield Change(old_path, node_kind(old_kind), DELETE, old_path)
        elif node_kind(old_kind) != node_kind(new_kind):
            yield Change(old_path, node_kind(old_kind), DELETE, old_path)
            yield Change(new_path, node_kind(new_kind), ADD, None)
        elif c.name[0] != c.name[1] or c.parent_id[0] != c.parent_id[1]:
            yield Change(new_path, node_kind(new_kind), MOVE, old_path)
        else:
            yield Change(new_path, node_kind(new_kind), EDIT, old_path)
