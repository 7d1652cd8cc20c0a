"""Indexes of revision graphs: one branch tip, and all branches of a repository.

Why this exists: revision numbers, the log order, parents and children need
the whole revision graph of a branch, which is costly to walk; these indexes
are built once per branch tip (see `storage`), then only read, and shared by
every thread and request.  Pure data over revision-ids; no Trac imports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vcsgraph.known_graph import KnownGraph

from trac_breezy.trac_app.bzr.caches import LRU

# The branch whose revision numbers a bare revno means, and which is the
# first choice for a revision's home in a multi-branch repository.
TRUNK = "trunk"


def revisions(index: BranchIndex | MultiIndex) -> int:
    """How many revisions an index covers: its weight in a cache."""
    return len(index.order)


class BranchIndex:
    """What needs the whole revision graph of one branch tip.

    Built once per (branch, tip) from Breezy's merge-sorted log and then only
    read, so it is shared by all threads.
    """

    def __init__(
        self,
        tip: bytes,
        nodes: Iterable[Any] = (),
        parent_map: dict[bytes, tuple[bytes, ...]] | None = None,
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
        self._ancestry: LRU[bytes, tuple[bytes, ...]] = LRU(16)
        self._add_nodes(nodes)
        self._add_parents(parent_map or {})

    def _add_nodes(self, nodes: Iterable[Any]) -> None:
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

    def _add_parents(self, parent_map: dict[bytes, tuple[bytes, ...]]) -> None:
        for revid, parents in parent_map.items():
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
            # A graph of this index's own parents, made for the call (~1.5 ms
            # for 1,000 revisions) rather than kept: Breezy's KnownGraph is as
            # big again as the whole index, in Rust memory, in each cached index.
            graph = KnownGraph(self.parents)
            keys = tuple(node.key for node in graph.merge_sort(revid))
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


class MultiIndex:
    """The repository-wide view of the branches of a multi-branch repository.

    `indexes` are the branches' indexes by relative path, `timestamps` the
    commit times of all their revisions.
    """

    def __init__(self, indexes: dict[str, BranchIndex], timestamps: Mapping[bytes, float]) -> None:
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
            return timestamps[revid], rank[relpath], indexes[relpath].pos[revid]

        self.order = sorted(self.home, key=sort_key)
        self.pos = {revid: i for i, revid in enumerate(self.order)}
        self.times = [timestamps[revid] for revid in self.order]
        # For "branch B as of global revision R": the running maximum of the
        # global position along B's mainline, and that mainline.
        self.asof: dict[str, tuple[list[int], list[bytes]]] = {}
        for relpath, index in indexes.items():
            running, highest = [], -1
            for revid in index.mainline:
                highest = max(highest, self.pos[revid])
                running.append(highest)
            self.asof[relpath] = (running, index.mainline)
