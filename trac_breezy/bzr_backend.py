"""Trac version-control backend for Bazaar branches, read through Breezy.

Why this exists: Trac 1.6 runs on Python 3 and the only Bazaar plugin for it,
TracBzr, was written for Python 2 and bzrlib and died with them.  Breezy
3.3 keeps the Bazaar formats alive, so this module implements Trac's
``trac.versioncontrol.api`` (connector, repository, node, changeset) on
Breezy's Python API, for repository type ``bzr``.

What a repository ``dir`` may be
    * a **branch** (``/srv/bzr/proj/trunk``): "single-branch mode";
    * a **shared repository or plain folder of branches**: "multi-branch
      mode".  Branches are found recursively (``trunk``, ``feature/x``) and
      each shows up in the browser as a top-level directory whose path is the
      branch's relative path; folders on the way (``feature``) are virtual
      directories.

Revision strings
    * Single-branch mode: the revnos users see in ``brz log``: ``"12"`` for
      mainline revisions, dotted ``"3.1.2"`` for merged ones.  Revnos are
      stable as long as the branch only grows (commit, push, pull); after
      ``uncommit`` or ``push --overwrite`` they may name other revisions.
    * Multi-branch mode: the Bazaar **revision-id**, with every character
      outside RFC 3986's unreserved set (letters, digits, ``-._~``)
      percent-encoded, because Trac reads ``@`` as rev@path, ``/`` as
      rev/path and ``:`` and ``,`` as log ranges:
      ``jo@example.com-20240301120000-x1y2`` becomes
      ``jo%40example.com-20240301120000-x1y2``.  A revision-id is the one
      identity a commit keeps in every branch that contains it, so a commit
      is one changeset, not one per branch.
      :meth:`BzrRepository.display_rev` shows it as ``<branch>:<revno>``
      (``trunk:12``, ``feature/x:3.1.2``), using its *home* branch: the first
      of ``trunk`` then the other branches alphabetically that has it on its
      mainline, else the first that merged it.  ``normalize_rev`` accepts the
      quoted id, ``revid:<id>``, ``<branch>:<revno>`` and a bare revno, which
      means a revno of ``trunk`` (or of the only branch).
      The ``<branch>,<revno>`` form was not chosen: Trac's revision log splits
      revision ranges on commas, and changeset URLs cannot hold ``/``.

Order
    Revisions of a branch are totally ordered by the reverse of Breezy's
    merge-sorted log (``brz log -n0``, oldest first): merged revisions come
    just before the merge that brought them in, so the order is topological
    and only ever appended to.  ``previous_rev`` follows the first parent,
    ``next_rev`` the first child.  In multi-branch mode the repository-wide
    order is by commit time; a path inside a branch at a revision the branch
    does not contain shows the branch as it was at that time (the newest
    mainline revision not younger than it), the way Subversion shows every
    branch at one global revision.

Read-only and safe
    Branches are opened with ``lock_read()`` only, which on local branches
    takes no lock on disk; nothing under ``.bzr`` is ever written, and a
    push holding the write lock does not stop readers.  A repository object
    (one per request in Trac) reads each tip once, so a page sees one state;
    a tip whose revisions are not visible yet (a push finishing between
    loading the pack list and reading the tip) makes it refresh once.  A
    missing or unreadable branch raises
    :class:`~trac.versioncontrol.api.InvalidRepository` or
    :class:`~trac.core.TracError` naming the path.

Performance
    What needs the whole revision graph (revno maps, log order, parents) is
    computed once per *branch tip* and shared between threads and requests;
    immutable per-revision data (revision metadata, the changes of a
    revision, the last change under each directory of a tree) is kept in
    bounded process-wide LRU caches keyed by revision-id.  A push changes the
    tip, so the next request re-reads the graph (a few milliseconds per
    thousand revisions) and reuses everything else.  In multi-branch mode a
    branch whose tip and tags files did not change (stat data, once settled)
    is not even opened unless its files are read.

Cached or direct
    Direct mode is the default and the recommendation (``[bzr]
    cached_repository = false``): with the caches above, the backend's share
    of a warm page of a 1,000-revision branch is a few milliseconds (whole
    pages render in 10-50 ms); a push is visible at once without
    ``sync_per_request`` or a hook; and revnos, which an ``uncommit`` can
    re-use, never go stale in Trac's database.  The cached
    mode (``[bzr] cached_repository = true``, or ``<name>.cached = true`` in
    ``[repositories]``) wraps the repository in
    :class:`BzrCachedRepository`, a ``CachedRepository`` whose ``sync``
    inserts every revision missing from the database (merged ones and other
    branches included) instead of following ``next_rev``; it makes the
    timeline and changeset search SQL queries on very long histories, at the
    price of a sync after every push and a ``repository resync`` after
    history is rewritten.  Either way, call :func:`notify_new_revisions` from
    a post-push hook so ``CommitTicketUpdater`` sees new commits.

Known limits
    A directory's "last change" is the newest change of an entry below it,
    so deleting its newest file does not count.  History follows renames
    through file-ids; a path's history after it was deleted starts with the
    deletion.  Nested trees (``tree-reference``) show as empty directories.

Trac plugin entry point (``[project.entry-points."trac.plugins"]``):
``"trac_breezy.bzr_backend" = "trac_breezy.bzr_backend"``.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import io
import os
import posixpath
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar
from urllib.parse import quote, unquote

import breezy
import breezy.bzr  # registers the Bazaar control-dir formats and probers
from breezy import errors as bzr_errors
from breezy.branch import Branch
from breezy.revision import NULL_REVISION
from trac.api import ISystemInfoProvider
from trac.config import BoolOption
from trac.core import Component, TracError, implements
from trac.util import as_bool
from trac.util.datefmt import utc
from trac.util.html import tag
from trac.util.text import exception_to_unicode, shorten_line
from trac.versioncontrol.api import (
    Changeset,
    InvalidRepository,
    IRepositoryConnector,
    Node,
    NoSuchChangeset,
    NoSuchNode,
    Repository,
    RepositoryManager,
    is_default,
)
from trac.versioncontrol.cache import CACHE_YOUNGEST_REV, CachedChangeset, CachedRepository
from trac.versioncontrol.web_ui.browser import IPropertyRenderer

__all__ = [
    "BzrCachedRepository",
    "BzrChangeset",
    "BzrConnector",
    "BzrNode",
    "BzrPropertyRenderer",
    "BzrRepository",
    "notify_new_revisions",
]

REPOS_TYPE = "bzr"
HEAD_NAMES = ("", "head", "latest", "youngest", "tip")
TRUNK = "trunk"
# A revision-id keeps only RFC 3986's unreserved characters when it becomes
# a revision string; Trac gives meaning to "@" (path@rev), "/" (rev/path),
# ":" and "," (log ranges), so those and all others are percent-encoded.
_REVID_SAFE = "-._~"
_REVNO_RE = re.compile(r"^[0-9]+(?:\.[0-9]+)*$")
_MAX_SCAN_DEPTH = 8
# A tip or tags file younger than this may change again without a visible
# change of its stat data on file systems with coarse timestamps.
_SETTLED_SECONDS = 2.0
_CHUNK = 200

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


# -- Small helpers -----------------------------------------------------------


class _LRU(Generic[K, V]):
    """A small thread-safe least-recently-used mapping."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> V:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def _norm(path: str | None) -> str:
    """A repository path without surrounding slashes; '' is the root."""
    return (path or "").strip("/")


def _join(prefix: str, path: str) -> str:
    return f"{prefix}/{path}" if prefix and path else prefix or path


def _trac_path(path: str) -> str:
    return path or "/"


def _is_head(rev: object) -> bool:
    return rev is None or (isinstance(rev, str) and rev.strip().lower() in HEAD_NAMES)


def _quote_revid(revid: bytes) -> str:
    return quote(revid.decode("utf-8", "surrogateescape"), safe=_REVID_SAFE)


def _unquote_revid(rev: str) -> bytes:
    return unquote(rev).encode("utf-8", "surrogateescape")


def _trac_kind(bzr_kind: str | None) -> str:
    return Node.DIRECTORY if bzr_kind in ("directory", "tree-reference") else Node.FILE


@contextlib.contextmanager
def _reading(path: str) -> Iterator[None]:
    """Turn Breezy and OS errors while reading `path` into a `TracError`."""
    try:
        yield
    except TracError:
        raise
    except (bzr_errors.BzrError, OSError) as e:
        raise TracError(
            f'Cannot read the Bazaar branch at "{path}": {exception_to_unicode(e)}'
        ) from e


# -- Data shared between threads and requests --------------------------------


@dataclass(frozen=True)
class _RevInfo:
    """What Trac shows of a revision; revisions never change."""

    committer: str
    authors: tuple[str, ...]
    timestamp: float
    timezone: int
    message: str
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def author(self) -> str:
        return self.authors[0] if self.authors else self.committer

    @property
    def date(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp, utc)


class _Change(NamedTuple):
    """One change of a revision against its first parent, branch-relative."""

    path: str
    kind: str
    change: str
    base_path: str | None


class _Entry(NamedTuple):
    """The inventory data of one path in a revision tree."""

    kind: str
    revision: bytes | None
    size: int | None
    executable: bool
    target: str | None
    file_id: bytes | None

    @classmethod
    def of(cls, entry: Any) -> _Entry:
        return cls(
            entry.kind,
            entry.revision,
            getattr(entry, "text_size", None),
            bool(getattr(entry, "executable", False)),
            getattr(entry, "symlink_target", None),
            entry.file_id,
        )


class _BranchIndex:
    """What needs the whole revision graph of one branch tip.

    Built once per (branch, tip) from Breezy's merge-sorted log and then only
    read, so it is shared by all threads.
    """

    def __init__(
        self,
        tip: bytes,
        nodes: Iterable[Any] = (),
        parent_map: dict[bytes, tuple[bytes, ...]] | None = None,
        graph: Any = None,
    ) -> None:
        self.tip = tip
        self.order: list[bytes] = []  # oldest first, the reverse of `brz log -n0`
        self.pos: dict[bytes, int] = {}
        self.revnos: dict[bytes, str] = {}
        self.revids: dict[str, bytes] = {}
        self.depth: dict[bytes, int] = {}
        self.parents: dict[bytes, tuple[bytes, ...]] = {}
        self.children: dict[bytes, list[bytes]] = {}
        self.mainline: list[bytes] = []
        self._graph = graph
        self._graph_lock = threading.Lock()
        self._ancestry: _LRU[bytes, tuple[bytes, ...]] = _LRU(16)
        for node in reversed(list(nodes)):  # `nodes` is merge-sorted, newest first
            revid = node.key
            self.pos[revid] = len(self.order)
            self.order.append(revid)
            revno = ".".join(map(str, node.revno))
            self.revnos[revid] = revno
            self.revids[revno] = revid
            self.depth[revid] = node.merge_depth
            if node.merge_depth == 0:
                self.mainline.append(revid)
        for revid, parents in (parent_map or {}).items():
            known = tuple(p for p in parents if p in self.pos)
            self.parents[revid] = known
            for parent in known:
                self.children.setdefault(parent, []).append(revid)

    def __contains__(self, revid: object) -> bool:
        return revid in self.pos

    def first_parent(self, revid: bytes) -> bytes | None:
        parents = self.parents.get(revid)
        return parents[0] if parents else None

    def first_child(self, revid: bytes) -> bytes | None:
        children = self.children.get(revid, [])
        direct = [c for c in children if self.first_parent(c) == revid]
        candidates = direct or children
        return min(candidates, key=self.pos.__getitem__) if candidates else None

    def ancestry(self, revid: bytes) -> Iterable[bytes]:
        """Ancestors of `revid` (itself included) in log order, newest first."""
        if self.depth.get(revid) == 0:
            return (self.order[i] for i in range(self.pos[revid], -1, -1))
        cached = self._ancestry.get(revid)
        if cached is None:
            with self._graph_lock:
                keys = tuple(node.key for node in self._graph.merge_sort(revid))
            cached = self._ancestry.put(revid, keys)
        return cached

    def merged(self, revid: bytes) -> list[bytes]:
        """Revisions brought in by the merge `revid`, newest first."""
        depth = self.depth[revid]
        result = []
        for i in range(self.pos[revid] - 1, -1, -1):
            other = self.order[i]
            if self.depth[other] <= depth:
                break
            result.append(other)
        return result

    def merged_in(self, revid: bytes) -> bytes | None:
        """The revision whose merge brought `revid` into this branch."""
        depth = self.depth[revid]
        for i in range(self.pos[revid] + 1, len(self.order)):
            other = self.order[i]
            if self.depth[other] < depth:
                return other
        return None


class _MultiIndex:
    """The repository-wide view of the branches of a multi-branch repository."""

    def __init__(self, indexes: dict[str, _BranchIndex], infos: dict[bytes, _RevInfo]) -> None:
        ranked = sorted(indexes, key=lambda relpath: (relpath != TRUNK, relpath))
        rank = {relpath: i for i, relpath in enumerate(ranked)}
        self.home: dict[bytes, str] = {}
        for mainline_only in (True, False):
            for relpath in ranked:
                index = indexes[relpath]
                for revid in index.mainline if mainline_only else index.order:
                    self.home.setdefault(revid, relpath)

        def sort_key(revid: bytes) -> tuple[float, int, int]:
            relpath = self.home[revid]
            return infos[revid].timestamp, rank[relpath], indexes[relpath].pos[revid]

        self.order = sorted(self.home, key=sort_key)
        self.pos = {revid: i for i, revid in enumerate(self.order)}
        self.times = [infos[revid].timestamp for revid in self.order]
        # For "branch B as of global revision R": the running maximum of the
        # global position along B's mainline, and that mainline.
        self.asof: dict[str, tuple[list[int], list[bytes]]] = {}
        for relpath, index in indexes.items():
            running, highest = [], -1
            for revid in index.mainline:
                highest = max(highest, self.pos[revid])
                running.append(highest)
            self.asof[relpath] = (running, index.mainline)


_index_cache: _LRU[tuple[str, bytes], _BranchIndex] = _LRU(64)
_multi_cache: _LRU[tuple[Any, ...], _MultiIndex] = _LRU(16)
_revinfo_cache: _LRU[tuple[str, bytes], _RevInfo] = _LRU(100_000)
_changes_cache: _LRU[tuple[str, bytes], tuple[_Change, ...]] = _LRU(50_000)
_lastchange_cache: _LRU[tuple[str, bytes], dict[str, bytes]] = _LRU(256)
_fileinfo_cache: _LRU[tuple[str, bytes, bytes], tuple[str, bytes | None, str]] = _LRU(50_000)
_tip_cache: _LRU[str, tuple[tuple[int, int, int], bytes, str]] = _LRU(4096)
_tags_cache: _LRU[str, tuple[tuple[int, int, int], dict[bytes, list[str]]]] = _LRU(4096)
_synced_tips: _LRU[tuple[str, int, str], Any] = _LRU(256)


def clear_caches() -> None:
    """Forget everything cached about branches (used by tests)."""
    for cache in (
        _index_cache,
        _multi_cache,
        _revinfo_cache,
        _changes_cache,
        _lastchange_cache,
        _fileinfo_cache,
        _tip_cache,
        _tags_cache,
        _synced_tips,
    ):
        cache.clear()


def _stat_key(path: str, name: str = "last-revision") -> tuple[int, int, int] | None:
    """What changes when Breezy rewrites a branch's tip or tags (atomically).

    Only used to validate caches: None (another branch format) means "read
    the branch".
    """
    try:
        st = os.stat(os.path.join(path, ".bzr", "branch", name))
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _settled(stat: tuple[int, int, int] | None) -> bool:
    """Can a cache keyed by this stat data be trusted?"""
    return stat is not None and stat[1] / 1e9 < time.time() - _SETTLED_SECONDS


def find_branches(root: str) -> list[str]:
    """Relative paths of the Bazaar branches below `root`, sorted."""
    found = []
    base_depth = root.rstrip(os.sep).count(os.sep)
    for dirpath, dirnames, _files in os.walk(root):
        if ".bzr" in dirnames:
            dirnames.remove(".bzr")
            if os.path.isdir(os.path.join(dirpath, ".bzr", "branch")) and dirpath != root:
                found.append(os.path.relpath(dirpath, root).replace(os.sep, "/"))
                dirnames[:] = []  # a branch is a leaf; don't walk a working tree
                continue
        if dirpath.count(os.sep) - base_depth >= _MAX_SCAN_DEPTH:
            dirnames[:] = []
        dirnames.sort()
    return sorted(found)


# -- One branch, read-locked for the lifetime of a repository object ---------


class _BranchHandle:
    """One Bazaar branch of a Trac repository.

    The branch is opened and read-locked lazily, at most once per repository
    object (that is, per request); its tip is read once so the whole request
    sees one consistent state.
    """

    def __init__(self, path: str, relpath: str) -> None:
        self.path = path
        self.relpath = relpath
        self._branch: Any = None
        self._tip: bytes | None = None
        self._repo_key: str | None = None
        self._index: _BranchIndex | None = None
        self._trees: dict[bytes, Any] = {}
        self._tags: dict[bytes, list[str]] | None = None

    # opening

    @property
    def branch(self) -> Any:
        if self._branch is None:
            self._open()
        return self._branch

    def _open(self) -> None:
        try:
            branch = Branch.open(self.path)
        except bzr_errors.NotBranchError as e:
            raise InvalidRepository(
                f'"{self.path}" is not a Bazaar branch (missing or unreadable)'
            ) from e
        except (bzr_errors.BzrError, OSError) as e:
            raise InvalidRepository(
                f'Cannot open the Bazaar branch at "{self.path}": {exception_to_unicode(e)}'
            ) from e
        with _reading(self.path):
            branch.lock_read()
            try:
                self._read_tip(branch)
            except BaseException:
                branch.unlock()
                raise
        self._branch = branch

    def _read_tip(self, branch: Any) -> None:
        # lock_read() loaded the repository's pack list just before the tip
        # is read here; a push finishing in between leaves a tip whose
        # revisions are not visible yet, so look once more.  The tip file is
        # stat'ed first: a cache entry may be older than its key, never newer.
        stat = _stat_key(self.path)
        tip = branch.last_revision()
        repository = branch.repository
        if tip != NULL_REVISION and not repository.has_revision(tip):
            repository.refresh_data()  # a push is writing right now
            if not repository.has_revision(tip):
                raise TracError(
                    f'The Bazaar branch at "{self.path}" names a revision its '
                    "repository does not have (yet); try again in a moment"
                )
        repo_key = repository.user_url
        if self._tip is None:
            self._tip, self._repo_key = tip, repo_key
        if stat is not None:
            _tip_cache.put(self.path, (stat, tip, repo_key))

    def _known_tip(self) -> None:
        """Learn the tip from the cache if the tip file did not change."""
        stat = _stat_key(self.path)
        cached = _tip_cache.get(self.path) if _settled(stat) else None
        if cached is not None and cached[0] == stat:
            self._tip, self._repo_key = cached[1], cached[2]
        else:
            self.branch  # noqa: B018 - opening reads the tip

    @property
    def tip(self) -> bytes:
        if self._tip is None:
            self._known_tip()
        assert self._tip is not None
        return self._tip

    @property
    def repo_key(self) -> str:
        if self._repo_key is None:
            self._known_tip()
        assert self._repo_key is not None
        return self._repo_key

    @property
    def repository(self) -> Any:
        return self.branch.repository

    def close(self) -> None:
        branch, self._branch = self._branch, None
        self._tip = self._repo_key = self._index = self._tags = None
        self._trees.clear()
        if branch is not None:
            with contextlib.suppress(Exception):
                branch.unlock()

    # reading

    @property
    def index(self) -> _BranchIndex:
        if self._index is None:
            tip = self.tip
            index = _index_cache.get((self.path, tip))
            if index is None:
                with _reading(self.path):
                    index = _index_cache.put((self.path, tip), self._build_index(tip))
            self._index = index
        return self._index

    def _build_index(self, tip: bytes) -> _BranchIndex:
        if tip == NULL_REVISION:
            return _BranchIndex(tip)
        repository = self.repository
        graph = repository.get_known_graph_ancestry([tip])
        nodes = graph.merge_sort(tip)
        parent_map = repository.get_parent_map([node.key for node in nodes])
        return _BranchIndex(tip, nodes, parent_map, graph)

    def tree(self, revid: bytes) -> Any:
        tree = self._trees.get(revid)
        if tree is None:
            with _reading(self.path):
                tree = self.repository.revision_tree(revid)
            if len(self._trees) > 64:
                self._trees.clear()
            self._trees[revid] = tree
        return tree

    def revinfos(self, revids: Iterable[bytes]) -> dict[bytes, _RevInfo]:
        """Revision metadata, from the process cache or the repository."""
        key = self.repo_key
        result: dict[bytes, _RevInfo] = {}
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
                info = _RevInfo(
                    committer=revision.committer or "",
                    authors=tuple(revision.get_apparent_authors()),
                    timestamp=revision.timestamp,
                    timezone=revision.timezone or 0,
                    message=revision.message or "",
                    properties=dict(revision.properties),
                )
                result[revision.revision_id] = _revinfo_cache.put((key, revision.revision_id), info)
        return result

    def revinfo(self, revid: bytes) -> _RevInfo:
        return self.revinfos([revid])[revid]

    def tags(self) -> dict[bytes, list[str]]:
        """Tag names by revision-id, without opening the branch if unchanged."""
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

    def entry(self, revid: bytes, relpath: str) -> _Entry | None:
        tree = self.tree(revid)
        with _reading(self.path):
            for path, entry in tree.iter_entries_by_dir(specific_files=[relpath]):
                if path == relpath:
                    return _Entry.of(entry)
        return None

    def changes(self, revid: bytes) -> tuple[_Change, ...]:
        """The changes of `revid` against its first parent (cached)."""
        key = (self.repo_key, revid)
        changes = _changes_cache.get(key)
        if changes is None:
            parent = self.index.first_parent(revid) or NULL_REVISION
            with _reading(self.path):
                changes = tuple(_tree_changes(self.tree(parent), self.tree(revid)))
            _changes_cache.put(key, changes)
        return changes

    def last_changes(self, revid: bytes) -> dict[str, bytes]:
        """The newest change under each directory of the tree at `revid`."""
        key = (self.path, revid)
        last = _lastchange_cache.get(key)
        if last is None:
            pos = self.index.pos
            last = {}

            def newer(a: bytes | None, b: bytes) -> bytes:
                return b if a is None or pos.get(b, -1) > pos.get(a, -1) else a

            with _reading(self.path):
                for path, entry in self.tree(revid).iter_entries_by_dir():
                    if entry.kind == "directory":
                        last[path] = newer(last.get(path), entry.revision)
                    if path:
                        parent = posixpath.dirname(path)
                        last[parent] = newer(last.get(parent), entry.revision)
            for path in sorted(last, key=lambda p: p.count("/") if p else -1, reverse=True):
                if path:
                    parent = posixpath.dirname(path)
                    last[parent] = newer(last.get(parent), last[path])
            _lastchange_cache.put(key, last)
        return last

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
            parent_map = self.repository.texts.get_parent_map([key])
        pos = self.index.pos
        return tuple(p[-1] for p in parent_map.get(key) or () if p[-1] in pos)


def _tree_changes(old: Any, new: Any, specific_files: list[str] | None = None) -> Iterator[_Change]:
    """Trac changes between two revision trees, renames as moves."""
    for c in new.iter_changes(old, specific_files=specific_files):
        old_path, new_path = c.path
        old_kind, new_kind = c.kind
        if new_path == "" or (old_path == "" and new_path is None):
            continue  # the tree root
        if not c.versioned[0] or old_kind is None:
            yield _Change(new_path, _trac_kind(new_kind), Changeset.ADD, None)
        elif not c.versioned[1] or new_kind is None:
            yield _Change(old_path, _trac_kind(old_kind), Changeset.DELETE, old_path)
        elif _trac_kind(old_kind) != _trac_kind(new_kind):
            yield _Change(old_path, _trac_kind(old_kind), Changeset.DELETE, old_path)
            yield _Change(new_path, _trac_kind(new_kind), Changeset.ADD, None)
        elif c.name[0] != c.name[1] or c.parent_id[0] != c.parent_id[1]:
            yield _Change(new_path, _trac_kind(new_kind), Changeset.MOVE, old_path)
        else:
            yield _Change(new_path, _trac_kind(new_kind), Changeset.EDIT, old_path)


# -- The repository ----------------------------------------------------------


class BzrRepository(Repository):
    """A Bazaar branch, or a folder of branches, as a Trac repository."""

    has_linear_changesets = False

    def __init__(self, path: str, params: dict[str, Any], log: Any) -> None:
        self.path = os.path.normpath(path)
        super().__init__(f"{REPOS_TYPE}:{self.path}", params, log)
        self._handles: dict[str, _BranchHandle] = {}
        self._virtual: set[str] = set()
        self._multi: _MultiIndex | None = None
        self.multi = False
        self._scan()

    def _scan(self) -> None:
        path = self.path
        self._multi = None
        if not os.path.isdir(path):
            raise InvalidRepository(f'The Bazaar repository directory "{path}" does not exist')
        if os.path.isdir(os.path.join(path, ".bzr", "branch")):
            handle = _BranchHandle(path, "")
            handle.branch  # noqa: B018 - fail early, with the path, if unreadable
            self._handles = {"": handle}
            return
        relpaths = find_branches(path)
        if not relpaths and not os.path.isdir(os.path.join(path, ".bzr")):
            raise InvalidRepository(
                f'"{path}" is neither a Bazaar branch nor a directory containing branches'
            )
        self.multi = True
        self._handles = {r: _BranchHandle(os.path.join(path, r), r) for r in relpaths}
        self._virtual = {
            "/".join(parts[:i])
            for parts in (r.split("/") for r in relpaths)
            for i in range(1, len(parts))
        }

    # -- lifecycle

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()

    def clear(self, youngest_rev: Any = None) -> None:
        """Forget the tips read so far; the next call sees new commits."""
        self.close()
        self._scan()

    def sync(self, rev_callback: Callable[[str], None] | None = None, clean: bool = False) -> None:
        self.clear()

    # -- revision strings

    def _default_handle(self) -> _BranchHandle | None:
        if not self.multi:
            return self._handles[""]
        if TRUNK in self._handles:
            return self._handles[TRUNK]
        return next(iter(self._handles.values())) if len(self._handles) == 1 else None

    def _multi_index(self) -> _MultiIndex:
        if self._multi is None:
            handles = sorted(self._handles.values(), key=lambda h: h.relpath)
            key = (self.path, *((h.relpath, h.tip) for h in handles))
            multi = _multi_cache.get(key)
            if multi is None:
                indexes = {h.relpath: h.index for h in handles}
                infos: dict[bytes, _RevInfo] = {}
                for handle in handles:
                    wanted = [r for r in handle.index.order if r not in infos]
                    infos.update(handle.revinfos(wanted))
                multi = _multi_cache.put(key, _MultiIndex(indexes, infos))
            self._multi = multi
        return self._multi

    def _home(self, revid: bytes) -> _BranchHandle:
        if not self.multi:
            return self._handles[""]
        return self._handles[self._multi_index().home[revid]]

    def _rev(self, revid: bytes | None) -> str | None:
        """The revision string of a revision-id."""
        if revid is None or revid == NULL_REVISION:
            return None
        if self.multi:
            return _quote_revid(revid)
        return self._handles[""].index.revnos.get(revid)  # None: not in the branch

    def _revid(self, rev: Any) -> bytes | None:
        """The revision-id a revision string names (None: empty repository).

        :raise NoSuchChangeset: if `rev` names no revision.
        """
        if _is_head(rev):
            return self._youngest_revid()
        rev = str(rev).strip()
        if rev.startswith("revid:"):
            revid = rev[len("revid:") :].encode("utf-8", "surrogateescape")
            if self._contains(revid):
                return revid
            raise NoSuchChangeset(rev)
        if self.multi:
            revid = _unquote_revid(rev)
            if revid in self._multi_index().home:
                return revid
            if ":" in rev:
                relpath, revno = rev.rsplit(":", 1)
                handle = self._handles.get(_norm(relpath))
            else:
                handle, revno = self._default_handle(), rev
        else:
            handle, revno = self._handles[""], rev
        if revno.startswith(("r", "R")) and _REVNO_RE.match(revno[1:]):
            revno = revno[1:]  # r12, as in TracLinks
        if handle is None or revno not in handle.index.revids:
            raise NoSuchChangeset(rev)
        return handle.index.revids[revno]

    def _contains(self, revid: bytes) -> bool:
        if self.multi:
            return revid in self._multi_index().home
        return revid in self._handles[""].index

    def _youngest_revid(self) -> bytes | None:
        if self.multi:
            order = self._multi_index().order
            return order[-1] if order else None
        tip = self._handles[""].tip
        return None if tip == NULL_REVISION else tip

    def normalize_rev(self, rev: Any) -> str | None:
        return self._rev(self._revid(rev))

    def display_rev(self, rev: Any) -> str | None:
        revid = self._revid(rev)
        if revid is None or not self.multi:
            return self._rev(revid)
        handle = self._home(revid)
        return f"{handle.relpath}:{handle.index.revnos[revid]}"

    short_rev = display_rev

    def normalize_path(self, path: str | None) -> str:
        return _trac_path(_norm(path))

    def get_youngest_rev(self) -> str | None:
        return self._rev(self._youngest_revid())

    def _order(self) -> list[bytes]:
        """All revision-ids, oldest first."""
        return self._multi_index().order if self.multi else self._handles[""].index.order

    def get_oldest_rev(self) -> str | None:
        order = self._order()
        return self._rev(order[0]) if order else None

    def get_changeset_uid(self, rev: Any) -> str | None:
        revid = self._revid(rev)
        return revid.decode("utf-8", "surrogateescape") if revid else None

    def iter_revs(self) -> Iterator[str]:
        """Every revision string, oldest first (what a cache must hold)."""
        for revid in self._order():
            rev = self._rev(revid)
            assert rev is not None
            yield rev

    def tips_fingerprint(self) -> tuple[tuple[str, bytes], ...]:
        return tuple((h.relpath, h.tip) for h in self._handles.values())

    # -- order

    def _pos_pair(self, revid1: bytes, revid2: bytes) -> tuple[int, int]:
        if self.multi:
            for handle in (self._home(revid2), self._home(revid1)):
                index = handle.index
                if revid1 in index and revid2 in index:
                    return index.pos[revid1], index.pos[revid2]
            pos = self._multi_index().pos
            return pos[revid1], pos[revid2]
        pos = self._handles[""].index.pos
        return pos[revid1], pos[revid2]

    def rev_older_than(self, rev1: Any, rev2: Any) -> bool:
        revid1, revid2 = self._revid(rev1), self._revid(rev2)
        if revid1 is None or revid2 is None:
            return False
        pos1, pos2 = self._pos_pair(revid1, revid2)
        return pos1 < pos2

    def parent_revs(self, rev: Any) -> list[str]:
        revid = self._revid(rev)
        if revid is None:
            return []
        parents = self._home(revid).index.parents.get(revid, ())
        return [r for r in map(self._rev, parents) if r is not None]

    def child_revs(self, rev: Any) -> list[str]:
        revid = self._revid(rev)
        if revid is None:
            return []
        children = self._home(revid).index.children.get(revid, [])
        return [r for r in map(self._rev, children) if r is not None]

    def previous_rev(self, rev: Any, path: str = "") -> str | None:
        revid = self._revid(rev)
        if revid is None:
            return None
        path = _norm(path)
        handle, inner = self._locate(path)
        if handle is None:
            multi = self._multi_index()
            if not path:
                i = multi.pos[revid]
                return self._rev(multi.order[i - 1]) if i else None
            return self._previous_by_history(path, revid)
        if inner:
            return self._previous_by_history(path, revid)
        return self._rev(self._pick(handle, revid, handle.index.first_parent))

    def _pick(
        self, handle: _BranchHandle, revid: bytes, step: Callable[[bytes], bytes | None]
    ) -> bytes | None:
        """Step from `revid` inside `handle`, or from its state as of `revid`."""
        effective = self._effective(handle, revid)
        if effective is None:
            return None
        return step(effective) if effective == revid else effective

    def _previous_by_history(self, path: str, revid: bytes) -> str | None:
        rev = self._rev(revid)
        try:
            node = self.get_node(path, rev)
        except NoSuchNode:
            return self.previous_rev(rev)
        for _path, hrev, _chg in node.get_history():
            if hrev != rev and hrev is not None:
                return hrev
        return None

    def next_rev(self, rev: Any, path: str = "") -> str | None:
        revid = self._revid(rev)
        if revid is None:
            return None
        path = _norm(path)
        handle, inner = self._locate(path)
        if handle is None:
            multi = self._multi_index()
            if not path:
                i = multi.pos[revid] + 1
                return self._rev(multi.order[i]) if i < len(multi.order) else None
            return self._next_by_history(path, revid)
        if inner:
            return self._next_by_history(path, revid)
        if revid not in handle.index:
            return None
        return self._rev(handle.index.first_child(revid))

    def _next_by_history(self, path: str, revid: bytes) -> str | None:
        """The oldest change of `path` younger than `revid`, seen from the tip."""
        try:
            node = self.get_node(path, None)
        except NoSuchNode:
            return self.next_rev(self._rev(revid))
        following = None
        for _path, hrev, _chg in node.get_history():
            hrevid = self._revid(hrev)
            if hrevid is None or not self._after(hrevid, revid):
                break
            following = hrev
        return following

    def _after(self, revid1: bytes, revid2: bytes) -> bool:
        pos1, pos2 = self._pos_pair(revid1, revid2)
        return pos1 > pos2

    # -- paths and nodes

    def _locate(self, path: str) -> tuple[_BranchHandle | None, str]:
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

    def _effective(self, handle: _BranchHandle, revid: bytes | None) -> bytes | None:
        """The revision of `handle` to show for the repository at `revid`."""
        tip = handle.tip
        if revid is None:
            return None if tip == NULL_REVISION else tip
        index = handle.index
        if revid in index:
            return revid
        if not self.multi:
            return None
        multi = self._multi_index()
        running, mainline = multi.asof[handle.relpath]
        i = bisect.bisect_right(running, multi.pos[revid])
        return mainline[i - 1] if i else None

    def get_node(self, path: str | None, rev: Any = None) -> BzrNode:
        path = _norm(path)
        revid = self._revid(rev)
        handle, inner = self._locate(path)
        if handle is None:
            if path and path not in self._virtual:
                raise NoSuchNode(path, rev)
            return BzrNode(self, path, self._rev(revid), Node.DIRECTORY, None, "", revid)
        effective = self._effective(handle, revid)
        if effective is None:
            if not inner and (not self.multi or handle.tip == NULL_REVISION):
                # an empty branch still has a root directory
                return BzrNode(self, path, None, Node.DIRECTORY, handle, "", None)
            raise NoSuchNode(path, rev)
        if not inner:  # a branch root needs no inventory lookup
            return BzrNode(self, path, self._rev(effective), Node.DIRECTORY, handle, "", effective)
        entry = handle.entry(effective, inner)
        if entry is None:
            raise NoSuchNode(path, rev)
        kind = _trac_kind(entry.kind)
        return BzrNode(self, path, self._rev(effective), kind, handle, inner, effective, entry)

    def _virtual_children(self, path: str, revid: bytes | None) -> Iterator[BzrNode]:
        prefix = path + "/" if path else ""
        names = set()
        for relpath in list(self._handles) + sorted(self._virtual):
            if relpath.startswith(prefix):
                names.add(relpath[len(prefix) :].split("/", 1)[0])
        for name in sorted(names):
            with contextlib.suppress(NoSuchNode):
                node = self.get_node(prefix + name, self._rev(revid))
                if node.handle is None and not any(True for _ in node.get_entries()):
                    continue  # a folder whose branches did not exist yet
                yield node

    def get_path_history(
        self, path: str | None, rev: Any = None, limit: int | None = None
    ) -> Iterator[tuple[str, str, str]]:
        """History of `path` at `rev`, starting with its deletion if it is gone."""
        path = _norm(path)
        revid = self._revid(rev)
        try:
            node = self.get_node(path, self._rev(revid))
        except NoSuchNode:
            pass
        else:
            yield from node.get_history(limit)
            return
        handle, inner = self._locate(path)
        if handle is None or revid is None:
            return
        effective = self._effective(handle, revid)
        if effective is None:
            return
        count = 0
        for older in handle.index.ancestry(effective):
            if any(_deletes(change, inner) for change in handle.changes(older)):
                parent = handle.index.first_parent(older)
                rev_str = self._rev(older)
                assert rev_str is not None
                yield _trac_path(path), rev_str, Changeset.DELETE
                count += 1
                if parent is None or (limit is not None and count >= limit):
                    return
                try:
                    node = self.get_node(path, self._rev(parent))
                except NoSuchNode:
                    return
                yield from node.get_history(None if limit is None else limit - count)
                return

    def get_changes(
        self,
        old_path: str | None,
        old_rev: Any,
        new_path: str | None,
        new_rev: Any,
        ignore_ancestry: int = 1,
    ) -> Iterator[tuple[BzrNode | None, BzrNode | None, str, str]]:
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

    def _tree_diff(
        self, old: BzrNode, new: BzrNode
    ) -> Iterator[tuple[BzrNode | None, BzrNode | None, str, str]]:
        """Changes between two revisions of one directory of one branch."""
        handle = new.handle
        assert handle is not None and old.revid is not None and new.revid is not None
        old_tree, new_tree = handle.tree(old.revid), handle.tree(new.revid)
        specific = [new.inner] if new.inner else None
        with _reading(handle.path):
            changes = list(_tree_changes(old_tree, new_tree, specific))
        prefix = handle.relpath
        for change in changes:
            old_node = new_node = None
            if change.change != Changeset.ADD:
                assert change.base_path is not None
                old_node = self._node_in(handle, old.revid, change.base_path, prefix)
            if change.change != Changeset.DELETE:
                new_node = self._node_in(handle, new.revid, change.path, prefix)
            yield old_node, new_node, change.kind, change.change

    def _path_diff(
        self, old: BzrNode, new: BzrNode
    ) -> Iterator[tuple[BzrNode | None, BzrNode | None, str, str]]:
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

    def _node_in(self, handle: _BranchHandle, revid: bytes, inner: str, prefix: str) -> BzrNode:
        entry = handle.entry(revid, inner)
        if entry is None:
            raise NoSuchNode(_join(prefix, inner), self._rev(revid))
        return BzrNode(
            self,
            _join(prefix, inner),
            self._rev(revid),
            _trac_kind(entry.kind),
            handle,
            inner,
            revid,
            entry,
        )

    # -- changesets

    def get_changeset(self, rev: Any) -> BzrChangeset:
        revid = self._revid(rev)
        if revid is None:
            raise NoSuchChangeset(rev)
        handle = self._home(revid)
        return BzrChangeset(self, handle, revid, handle.revinfo(revid))

    def get_changesets(self, start: datetime, stop: datetime) -> Iterator[BzrChangeset]:
        start_ts, stop_ts = start.timestamp(), stop.timestamp()
        if self.multi:
            multi = self._multi_index()
            lo = bisect.bisect_left(multi.times, start_ts)
            hi = bisect.bisect_left(multi.times, stop_ts)
            for revid in reversed(multi.order[lo:hi]):
                handle = self._home(revid)
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

    def get_quickjump_entries(self, rev: Any) -> Iterator[tuple[str, str, str, str]]:
        for relpath, handle in sorted(self._handles.items()):
            tip = handle.tip
            if self.multi and tip != NULL_REVISION:
                yield "branches", relpath, relpath, self._rev(tip) or ""
        for relpath, handle in sorted(self._handles.items()):
            tags = []
            for revid, names in handle.tags().items():
                if revid in handle.index:
                    tags.extend((name, revid) for name in names)
            for name, revid in sorted(tags):
                label = f"{relpath}:{name}" if self.multi else name
                yield "tags", label, _trac_path(relpath), self._rev(revid) or ""

    def get_path_url(self, path: str | None, rev: Any) -> str | None:
        url = self.params.get("url")
        if not url or not self.multi:
            return url
        handle, _inner = self._locate(_norm(path))
        return f"{url.rstrip('/')}/{handle.relpath}" if handle else url

    # -- used by nodes and changesets

    def _history_of_root(
        self, handle: _BranchHandle, revid: bytes, path: str
    ) -> Iterator[tuple[str, str, str]]:
        index = handle.index
        for older in index.ancestry(revid):
            rev = self._rev(older)
            if rev is not None:
                yield path, rev, Changeset.ADD if not index.parents.get(older) else Changeset.EDIT

    def _history_of_dir(
        self, handle: _BranchHandle, revid: bytes, inner: str
    ) -> Iterator[tuple[str, str, str]]:
        """Revisions that changed something below a directory, newest first.

        `current` is the directory's path in the tree of the revision being
        looked at; renames of it or of a parent move it backwards in time.
        """
        current = inner
        for older in handle.index.ancestry(revid):
            changes = handle.changes(older)
            before, chg = current, None
            for change in changes:
                if change.path == current and change.kind == Node.DIRECTORY:
                    if change.change == Changeset.ADD:
                        chg = Changeset.ADD
                    elif change.change == Changeset.MOVE and change.base_path is not None:
                        chg, before = Changeset.MOVE, change.base_path
                elif (
                    change.change == Changeset.MOVE
                    and change.base_path is not None
                    and current.startswith(change.path + "/")
                ):
                    chg, before = Changeset.MOVE, change.base_path + current[len(change.path) :]
            if chg is None and any(
                _below(c.path, current) or _below(c.base_path, before) for c in changes
            ):
                chg = Changeset.EDIT
            rev = self._rev(older)
            if chg is not None and rev is not None:
                yield _join(handle.relpath, current), rev, chg
                if chg == Changeset.ADD:
                    return
            current = before

    def _history_of_file(
        self, handle: _BranchHandle, revid: bytes, entry: _Entry
    ) -> Iterator[tuple[str, str, str]]:
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
            rev = self._rev(current)
            if rev is not None:
                yield _join(handle.relpath, path), rev, chg

    def _history_of_virtual(self, path: str, revid: bytes | None) -> Iterator[tuple[str, str, str]]:
        if revid is None:
            return
        multi = self._multi_index()
        prefix = path + "/" if path else ""
        for i in range(multi.pos[revid], -1, -1):
            older = multi.order[i]
            if not prefix or (multi.home[older] + "/").startswith(prefix):
                yield _trac_path(path), _quote_revid(older), Changeset.EDIT


def _below(path: str | None, directory: str) -> bool:
    if path is None:
        return False
    return not directory or path == directory or path.startswith(directory + "/")


def _deletes(change: _Change, path: str) -> bool:
    """Does `change` remove `path` (itself, a parent, or by renaming it)?"""
    if change.change == Changeset.DELETE:
        return change.path == path or path.startswith(change.path + "/")
    if change.change == Changeset.MOVE and change.base_path is not None:
        return change.base_path == path or path.startswith(change.base_path + "/")
    return False


# -- Nodes -------------------------------------------------------------------


class BzrNode(Node):
    """A file or directory of a branch at a revision, or a folder of branches."""

    def __init__(
        self,
        repos: BzrRepository,
        path: str,
        rev: str | None,
        kind: str,
        handle: _BranchHandle | None,
        inner: str,
        revid: bytes | None,
        entry: _Entry | None = None,
    ) -> None:
        self.handle = handle
        self.inner = inner
        self.revid = revid
        self.entry = entry
        self._created: bytes | None = None
        super().__init__(repos, _trac_path(path), rev, kind)
        self.created_path = self.path

    repos: BzrRepository

    @property
    def _bare(self) -> str:
        return _norm(self.path)

    # where and when

    @property  # type: ignore[override]
    def created_rev(self) -> str | None:
        return self.repos._rev(self._created_revid())

    def _created_revid(self) -> bytes | None:
        if self._created is None:
            self._created = self._find_created()
        return self._created

    def _find_created(self) -> bytes | None:
        handle, revid = self.handle, self.revid
        if revid is None:
            return None
        if handle is None:  # the newest branch state under a folder of branches
            states = [node.revid for node in self.get_entries() if node.revid is not None]
            return max(states, key=self.repos._multi_index().pos.__getitem__, default=None)
        if not self.inner:
            return revid
        if self.isfile:
            assert self.entry is not None
            return self.entry.revision
        return handle.last_changes(revid).get(self.inner, revid)

    def get_last_modified(self) -> datetime | None:
        created = self._created_revid()
        if created is None:
            return None
        return (self.handle or self.repos._home(created)).revinfo(created).date

    # content

    def get_content(self) -> io.BytesIO | None:
        if not self.isfile:
            return None
        return io.BytesIO(self._bytes())

    def _bytes(self) -> bytes:
        handle, entry = self.handle, self.entry
        assert handle is not None and self.revid is not None and entry is not None
        if entry.kind == "symlink":
            return f"link {entry.target or ''}".encode()
        with _reading(handle.path):
            return handle.tree(self.revid).get_file_text(self.inner)

    def get_content_length(self) -> int | None:
        if not self.isfile:
            return None
        assert self.entry is not None
        if self.entry.kind == "file" and self.entry.size is not None:
            return self.entry.size
        return len(self._bytes())

    def get_content_type(self) -> str | None:
        return None  # Trac guesses from the name and content

    def content_key(self) -> tuple[Any, ...]:
        """Equal for two files with equal content."""
        entry = self.entry
        if entry is None:
            return (self.kind,)
        if entry.kind == "file" and self.handle is not None and self.revid is not None:
            with _reading(self.handle.path):
                sha1 = self.handle.tree(self.revid).get_file_sha1(self.inner)
            return entry.kind, sha1, entry.executable
        return entry.kind, entry.target, entry.executable

    def get_properties(self) -> dict[str, str]:
        props = {}
        if self.entry is not None:
            if self.entry.executable:
                props["bzr:executable"] = "*"
            if self.entry.kind == "symlink":
                props["bzr:symlink-target"] = self.entry.target or ""
        if self.handle is not None and not self.inner and self.repos.multi:
            props["bzr:branch"] = self.handle.relpath
        return props

    # directories

    def get_entries(self) -> Iterator[BzrNode]:
        if not self.isdir:
            return
        handle = self.handle
        if handle is None:
            yield from self.repos._virtual_children(self._bare, self.revid)
            return
        if self.revid is None or (self.entry is not None and self.entry.kind == "tree-reference"):
            return  # an empty branch, or a nested tree this backend does not enter
        tree = handle.tree(self.revid)
        with _reading(handle.path):
            children = [(e.name, _Entry.of(e)) for e in tree.iter_child_entries(self.inner)]
        for name, entry in children:
            inner = _join(self.inner, name)
            yield BzrNode(
                self.repos,
                _join(handle.relpath, inner),
                self.rev,
                _trac_kind(entry.kind),
                handle,
                inner,
                self.revid,
                entry,
            )

    def subtree(self) -> dict[str, tuple[Any, ...]]:
        """Path (relative to this directory) -> content key, for diffs."""
        handle = self.handle
        assert handle is not None and self.revid is not None
        tree = handle.tree(self.revid)
        result: dict[str, tuple[Any, ...]] = {}
        pending = [""]
        with _reading(handle.path):
            while pending:
                rel_dir = pending.pop()
                for entry in tree.iter_child_entries(_join(self.inner, rel_dir)):
                    rel = _join(rel_dir, entry.name)
                    if entry.kind == "file":
                        result[rel] = ("file", entry.text_sha1, entry.executable)
                    elif entry.kind == "symlink":
                        result[rel] = ("symlink", entry.symlink_target)
                    else:
                        result[rel] = (entry.kind,)
                        if entry.kind == "directory":
                            pending.append(rel)
        return result

    def child(self, rel: str) -> BzrNode:
        handle = self.handle
        assert handle is not None and self.revid is not None
        return self.repos._node_in(handle, self.revid, _join(self.inner, rel), handle.relpath)

    # history

    def get_history(self, limit: int | None = None) -> Iterator[tuple[str, str, str]]:
        history = self._history()
        for count, item in enumerate(history):
            if limit is not None and count >= limit:
                return
            yield item

    def _history(self) -> Iterator[tuple[str, str, str]]:
        handle, revid = self.handle, self.revid
        if handle is None:
            return self.repos._history_of_virtual(self._bare, revid)
        if revid is None:
            return iter(())
        if not self.inner:
            return self.repos._history_of_root(handle, revid, self.path)
        if self.isdir:
            return self.repos._history_of_dir(handle, revid, self.inner)
        assert self.entry is not None
        return self.repos._history_of_file(handle, revid, self.entry)

    def get_annotations(self) -> list[str]:
        handle = self.handle
        if not self.isfile or handle is None or self.revid is None:
            return []
        with _reading(handle.path):
            lines = handle.tree(self.revid).annotate_iter(self.inner)
        return [self.repos._rev(revid) or "" for revid, _line in lines]


# -- Changesets --------------------------------------------------------------


class BzrChangeset(Changeset):
    """A Bazaar revision; its changes are against its first (left) parent."""

    def __init__(
        self, repos: BzrRepository, handle: _BranchHandle, revid: bytes, info: _RevInfo
    ) -> None:
        self.handle = handle
        self.revid = revid
        self.info = info
        rev = repos._rev(revid)
        super().__init__(repos, rev, info.message, info.author, info.date)

    repos: BzrRepository

    def get_changes(self) -> Iterator[tuple[str, str, str, str | None, str | None]]:
        handle = self.handle
        parent = self.repos._rev(handle.index.first_parent(self.revid))
        prefix = handle.relpath
        for change in sorted(handle.changes(self.revid), key=lambda c: (c.path, c.change)):
            if change.change == Changeset.ADD:
                yield _join(prefix, change.path), change.kind, change.change, None, None
            else:
                assert change.base_path is not None
                base = _join(prefix, change.base_path)
                yield _join(prefix, change.path), change.kind, change.change, base, parent

    def get_properties(self) -> dict[str, Any]:
        info, index, rev_of = self.info, self.handle.index, self.repos._rev
        props: dict[str, Any] = {}
        parents = index.parents.get(self.revid, ())
        if len(parents) > 1:
            props["Parents"] = [rev_of(p) for p in parents]
            props["Merged"] = [rev_of(r) for r in index.merged(self.revid)]
        if index.depth.get(self.revid):
            merged_in = index.merged_in(self.revid)
            if merged_in is not None:
                props["Merged in"] = [rev_of(merged_in)]
        nick = info.properties.get("branch-nick")
        if nick:
            props["Branch nick"] = nick
        if info.committer and info.committer != info.author:
            props["Committer"] = info.committer
        if len(info.authors) > 1:
            props["Authors"] = ", ".join(info.authors)
        bugs = info.properties.get("bugs")
        if bugs:
            props["Bugs"] = ", ".join(line for line in bugs.splitlines() if line)
        return props

    def get_branches(self) -> list[tuple[str, bool]]:
        if not self.repos.multi:
            return []
        return [
            (handle.relpath, handle.tip == self.revid)
            for handle in self.repos._handles.values()
            if handle.tip != NULL_REVISION and self.revid in handle.index
        ]

    def get_tags(self) -> list[str]:
        return sorted(self.handle.tags().get(self.revid, []))


# -- Cached mode -------------------------------------------------------------


class BzrCachedRepository(CachedRepository):
    """`CachedRepository` for Bazaar: string revisions and a set-based sync.

    Trac's own `sync` walks `next_rev` from the cached youngest revision,
    which would miss merged revisions and other branches; this one inserts
    every revision the database lacks.
    """

    repos: BzrRepository

    def normalize_rev(self, rev: Any) -> str | None:
        if _is_head(rev):
            return self.get_youngest_rev()
        return self.repos.normalize_rev(rev)

    def display_rev(self, rev: Any) -> str | None:
        return self.repos.display_rev(self.normalize_rev(rev))

    def short_rev(self, rev: Any) -> str | None:
        return self.repos.short_rev(self.normalize_rev(rev))

    def get_youngest_rev(self) -> str | None:
        return CachedRepository.get_youngest_rev(self) or None

    def get_changeset(self, rev: Any) -> BzrCachedChangeset:
        return BzrCachedChangeset(self, self.normalize_rev(rev), self.env)

    def child_revs(self, rev: Any) -> list[str]:
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
        return self.repos.repos.get_changeset(self.rev).get_branches()

    def get_tags(self) -> list[str]:
        return self.repos.repos.get_changeset(self.rev).get_tags()


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

    # ISystemInfoProvider methods

    def get_system_info(self) -> Iterator[tuple[str, str]]:
        yield "Breezy", breezy.version_string

    # IRepositoryConnector methods

    def get_supported_types(self) -> Iterator[tuple[str, int]]:
        yield REPOS_TYPE, 8

    def get_repository(self, repos_type: str, repos_dir: str, params: dict[str, Any]) -> Repository:
        repos = BzrRepository(repos_dir, params, self.log)
        if as_bool(params.get("cached", self.cached_repository)):
            return BzrCachedRepository(self.env, repos, self.log)
        return repos


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
